//! Errors of the remote API client. Each says what happened, where, and what to do.

use std::time::Duration;

use thiserror::Error;

use super::message::MalformedReply;

/// Everything a remote API call can fail with.
#[derive(Debug, Error)]
pub enum RemoteError {
    /// The endpoint string is not one ZeroMQ accepts.
    #[error("invalid remote API endpoint {endpoint:?}: {reason}; expected e.g. tcp://127.0.0.1:23000 (--remote)")]
    BadEndpoint { endpoint: String, reason: String },

    /// No reply within the deadline. With ZeroMQ, "nobody listening" and "listening but
    /// silent" look the same: the request is queued and nothing comes back.
    #[error(
        "cannot reach CoppeliaSim at {endpoint} within {}: is it running with the ZMQ remote \
         API add-on (port 23000, or zmqRemoteApi.rpcPort)? Start it, fix --remote, or use \
         --no-remote to collect without it",
        format_duration(*timeout)
    )]
    Unreachable { endpoint: String, timeout: Duration },

    /// CoppeliaSim executed the call and reported an error (text as CoppeliaSim wrote it).
    #[error("CoppeliaSim at {endpoint} reported an error in {func}: {message}")]
    ServerError {
        endpoint: String,
        func: String,
        message: String,
    },

    /// The server speaks protocol 1 (CoppeliaSim 4.5.1 or older).
    #[error(
        "the remote API server at {endpoint} speaks protocol 1 (CoppeliaSim 4.5.1 or older){}: \
         use CoppeliaSim 4.6 or newer",
        server_message.as_deref().map(|m| format!(" and answered {m:?}")).unwrap_or_default()
    )]
    Protocol1 {
        endpoint: String,
        server_message: Option<String>,
    },

    /// The reply is not a protocol-2 message at all.
    #[error(
        "the server at {endpoint} answered {func} with something that is not a ZMQ remote \
         API reply ({reason}): is another program listening on that port? Check --remote"
    )]
    MalformedReply {
        endpoint: String,
        func: String,
        reason: MalformedReply,
    },

    /// A well-formed reply whose return values have an unexpected shape.
    #[error(
        "CoppeliaSim at {endpoint} returned {got} from {func}, expected {expected}: this \
         CoppeliaSim version may not be supported (4.6 or newer is)"
    )]
    UnexpectedReturn {
        endpoint: String,
        func: &'static str,
        expected: &'static str,
        got: String,
    },

    /// The server kept asking us to wait (`_*wait*_`) for longer than the call budget.
    #[error(
        "{func} at {endpoint} still not finished after {} of _*wait*_ rounds: another \
         stepping client may be holding the simulation (it is released when that client \
         exits or its idle timeout expires)",
        format_duration(*waited)
    )]
    CallTooLong {
        endpoint: String,
        func: String,
        waited: Duration,
    },

    /// A ZeroMQ error other than a timeout.
    #[error(
        "ZeroMQ error talking to {endpoint} ({operation}): {reason}; check --remote and that \
         CoppeliaSim's ZMQ remote API add-on is running"
    )]
    Transport {
        endpoint: String,
        operation: &'static str,
        reason: String,
    },

    /// The client was closed.
    #[error("the remote API client for {endpoint} is closed")]
    Closed { endpoint: String },
}

impl RemoteError {
    /// True when trying again later may succeed (the server may come back).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    /// True when something answered at the endpoint (the error is about the answer).
    pub fn server_answered(&self) -> bool {
        matches!(
            self,
            Self::ServerError { .. }
                | Self::Protocol1 { .. }
                | Self::MalformedReply { .. }
                | Self::UnexpectedReturn { .. }
                | Self::CallTooLong { .. }
        )
    }
}

/// `3 s`, `500 ms`, `1.5 s`: short and with the unit, as in the user-facing messages.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_message_names_endpoint_deadline_and_fixes() {
        let e = RemoteError::Unreachable {
            endpoint: "tcp://127.0.0.1:23000".into(),
            timeout: Duration::from_secs(3),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach CoppeliaSim at tcp://127.0.0.1:23000 within 3 s: is it running with \
             the ZMQ remote API add-on (port 23000, or zmqRemoteApi.rpcPort)? Start it, fix \
             --remote, or use --no-remote to collect without it"
        );
        assert!(e.is_unreachable());
    }

    #[test]
    fn protocol1_message_says_which_version_to_use() {
        let e = RemoteError::Protocol1 {
            endpoint: "tcp://h:1".into(),
            server_message: Some("version does not match".into()),
        };
        let text = e.to_string();
        assert!(text.contains("tcp://h:1"), "{text}");
        assert!(text.contains("use CoppeliaSim 4.6 or newer"), "{text}");
        assert!(text.contains("version does not match"), "{text}");
    }

    #[test]
    fn durations_are_short_with_units() {
        assert_eq!(format_duration(Duration::from_secs(3)), "3 s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
    }
}
