//! `recvmsg(2)` with control messages: the kernel receive timestamp (`SO_TIMESTAMPNS`,
//! Linux `socket(7)`) and the socket's drop counter (`SO_RXQ_OVFL`).
//!
//! The one place with `unsafe` in the receivers; everything else uses safe wrappers.
//! Linux only, like the `SO_TIMESTAMPNS` option itself.

use std::io;
use std::net::SocketAddr;

/// What one `recvmsg` returned.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
    pub kernel_ns: Option<i64>,
    /// Cumulative drop counter of the socket, when the kernel attached it.
    pub drops: Option<u32>,
    pub truncated: bool,
}

/// Turns on kernel timestamps and drop counters. Returns which ones the kernel accepted.
pub fn enable_kernel_stamps(fd: std::os::fd::RawFd) -> (bool, bool) {
    let on: libc::c_int = 1;
    let set = |opt| {
        // SAFETY: `on` outlives the call and its size is passed.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    };
    (set(libc::SO_TIMESTAMPNS), set(libc::SO_RXQ_OVFL))
}

/// Receives one datagram without blocking (`WouldBlock` when none is queued).
pub fn recv_stamped(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<Received> {
    use std::mem::{size_of, zeroed};

    // u64 elements keep the control buffer aligned for `cmsghdr`.
    let mut control = [0u64; 16];
    // SAFETY: all-zero is a valid `sockaddr_storage`.
    let mut addr: libc::sockaddr_storage = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid `msghdr`; pointers are set below.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 16]>() as _;

    // SAFETY: every pointer in `msg` points to live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled `addr` with `msg_namelen` bytes.
    let from = unsafe { socket2::SockAddr::new(addr, msg.msg_namelen) }
        .as_socket()
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "datagram from a non-IP address")
        })?;
    let (kernel_ns, drops) = parse_control(&msg);
    Ok(Received {
        len: n as usize,
        from,
        kernel_ns,
        drops,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
    })
}

fn parse_control(msg: &libc::msghdr) -> (Option<i64>, Option<u32>) {
    let (mut stamp, mut drops) = (None, None);
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let hdr = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(data.cast());
                stamp = Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
            } else if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SO_RXQ_OVFL {
                drops = Some(std::ptr::read_unaligned(data.cast::<u32>()));
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    (stamp, drops)
}
