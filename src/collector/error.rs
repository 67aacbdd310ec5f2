use std::net::SocketAddr;

use thiserror::Error;

/// Errors a user can hit when starting the receivers.
#[derive(Debug, Error)]
pub enum CollectorError {
    #[error(
        "cannot listen on {proto} {addr}: the address is already in use. Is another \
         coppelia-bridge (or the notebook server) running? Stop it, or pick another port with \
         {flag} and point the scripts at it (extension string port{{…}} or \
         -Gcoppelia_bridge.port=…)"
    )]
    AddrInUse {
        proto: &'static str,
        addr: SocketAddr,
        flag: &'static str,
    },
    #[error(
        "cannot listen on {proto} {addr}: {source}. Check that the address belongs to this \
         machine (use 127.0.0.1 or 0.0.0.0) and that ports below 1024 are not used without \
         privileges"
    )]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot configure the {what} socket option on {addr}: {source}")]
    SockOpt {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl CollectorError {
    pub(crate) fn bind(
        proto: &'static str,
        flag: &'static str,
        addr: SocketAddr,
        e: std::io::Error,
    ) -> Self {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            CollectorError::AddrInUse { proto, addr, flag }
        } else {
            CollectorError::Bind {
                proto,
                addr,
                source: e,
            }
        }
    }
}
