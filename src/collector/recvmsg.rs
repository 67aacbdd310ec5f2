//! `recvmmsg(2)` / `recvmsg(2)` with control messages: each message's kernel receive
//! timestamp (`SO_TIMESTAMPNS`, Linux `socket(7)`) and the socket's drop counter
//! (`SO_RXQ_OVFL`).
//!
//! The one place with `unsafe` in the receivers. It is written on `libc` rather than `nix`:
//! nix 0.32's `recvmmsg` refills only `msg_iov` between calls and leaves `msg_namelen` and
//! `msg_controllen` as the kernel rewrote them on the previous call, so reused headers lose
//! their control messages (nix-rust/nix PR #2813). Here both are reset before every call, a
//! control message is read only when its `cmsg_len` covers its payload, and a datagram whose
//! control data the kernel cut (`MSG_CTRUNC`) keeps no kernel stamp (it falls back to the
//! read time, and is counted).
//! Linux only, like the socket options themselves.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Largest datagram read whole; anything longer is flagged as truncated (v1 messages are
/// at most 85 bytes).
pub const MAX_DATAGRAM: usize = 2048;

/// Room for `SCM_TIMESTAMPNS` (a timespec) and `SO_RXQ_OVFL` (a u32), each with its header
/// and padding (CMSG_SPACE(16) + CMSG_SPACE(4) = 32 + 24 on 64-bit Linux), with margin. u64
/// words keep the buffer aligned for `cmsghdr`.
const CONTROL_WORDS: usize = 16;

/// One received message's metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Received {
    /// Bytes available in the buffer (the datagram's length, capped at the buffer).
    pub len: usize,
    pub from: Option<SocketAddr>,
    pub kernel_ns: Option<i64>,
    /// Cumulative drop counter of the socket, when the kernel attached it.
    pub drops: Option<u32>,
    /// When the system call returned (wall clock, ns): user space read it then.
    pub read_ns: i64,
    /// The datagram was longer than the buffer.
    pub truncated: bool,
    /// The kernel cut the control data (`MSG_CTRUNC`): stamps of this message are unknown.
    pub control_truncated: bool,
}

/// Turns on kernel timestamps and drop counters. Returns which ones the kernel accepted.
pub fn enable_kernel_stamps(fd: RawFd) -> (bool, bool) {
    (
        set_int_option(fd, libc::SO_TIMESTAMPNS, 1),
        set_int_option(fd, libc::SO_RXQ_OVFL, 1),
    )
}

/// `setsockopt(fd, SOL_SOCKET, opt, &value)`; whether the kernel accepted it.
pub fn set_int_option(fd: RawFd, opt: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: `value` outlives the call and its size is passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// Preallocated buffers for receiving up to `capacity` datagrams per `recvmmsg` call. The
/// kernel-facing headers are rebuilt before every call from these stable heap buffers, so
/// the struct can move freely between calls.
pub struct BatchReader {
    capacity: usize,
    data: Box<[u8]>,
    addrs: Box<[libc::sockaddr_storage]>,
    controls: Box<[[u64; CONTROL_WORDS]]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
}

impl std::fmt::Debug for BatchReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchReader")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

// SAFETY: the raw pointers inside `iovs`/`hdrs` only ever point into this struct's own heap
// buffers and are rewritten before each use; nothing is shared between threads.
unsafe impl Send for BatchReader {}

impl BatchReader {
    /// Buffers for `capacity` datagrams of up to [`MAX_DATAGRAM`] bytes.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zero_addr: libc::sockaddr_storage = unsafe { zeroed() };
        let zero_iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        // SAFETY: as above.
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        Self {
            capacity,
            data: vec![0u8; capacity * MAX_DATAGRAM].into_boxed_slice(),
            addrs: vec![zero_addr; capacity].into_boxed_slice(),
            controls: vec![[0u64; CONTROL_WORDS]; capacity].into_boxed_slice(),
            iovs: vec![zero_iov; capacity].into_boxed_slice(),
            hdrs: vec![zero_hdr; capacity].into_boxed_slice(),
        }
    }

    /// One `recvmmsg`: calls `each(meta, payload)` for every datagram received, in order,
    /// and returns how many there were. With `wait`, it blocks until the first datagram (or
    /// the socket's `SO_RCVTIMEO`: `WouldBlock`), then takes what is queued without waiting
    /// (`MSG_WAITFORONE`); without, it never blocks (`WouldBlock` when nothing is queued).
    pub fn recv(
        &mut self,
        fd: RawFd,
        wait: bool,
        mut each: impl FnMut(Received, &[u8]),
    ) -> io::Result<usize> {
        for i in 0..self.capacity {
            // Capacities are in-out parameters of recvmsg(2): reset them before every call.
            self.iovs[i] = libc::iovec {
                iov_base: self.data[i * MAX_DATAGRAM..].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            let hdr = &mut self.hdrs[i];
            hdr.msg_len = 0;
            hdr.msg_hdr = msghdr(&mut self.addrs[i], &mut self.iovs[i], &mut self.controls[i]);
        }
        // SAFETY: every header points into live buffers of the sizes it states, and
        // `capacity` is the number of headers.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                self.capacity as libc::c_uint,
                if wait {
                    libc::MSG_WAITFORONE
                } else {
                    libc::MSG_DONTWAIT
                },
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        let read_ns = crate::time::unix_now_ns();
        for i in 0..n {
            let hdr = &self.hdrs[i];
            let mut meta = read_header(&hdr.msg_hdr, hdr.msg_len as usize, read_ns);
            meta.len = meta.len.min(MAX_DATAGRAM);
            let start = i * MAX_DATAGRAM;
            each(meta, &self.data[start..start + meta.len]);
        }
        Ok(n)
    }
}

/// One non-blocking `recvmsg` into `buf` (stream sockets: the kernel stamp, when present,
/// is that of the newest segment the read consumed).
pub fn recv_one(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: all-zero is a valid `sockaddr_storage`.
    let mut addr: libc::sockaddr_storage = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; CONTROL_WORDS];
    let mut msg = msghdr(&mut addr, &mut iov, &mut control);
    // SAFETY: every pointer in `msg` points to live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut r = read_header(&msg, n as usize, crate::time::unix_now_ns());
    r.len = r.len.min(buf.len());
    Ok(r)
}

fn msghdr(
    addr: &mut libc::sockaddr_storage,
    iov: &mut libc::iovec,
    control: &mut [u64; CONTROL_WORDS],
) -> libc::msghdr {
    // SAFETY: all-zero is a valid `msghdr`; the pointers are set below.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; CONTROL_WORDS]>() as _;
    msg
}

/// What the kernel wrote into `msg` for a message of `len` bytes.
fn read_header(msg: &libc::msghdr, len: usize, read_ns: i64) -> Received {
    let from = if msg.msg_namelen > 0 {
        // SAFETY: the kernel filled `msg_name` (a sockaddr_storage) with `msg_namelen` bytes.
        let storage = unsafe { std::ptr::read(msg.msg_name as *const libc::sockaddr_storage) };
        // SAFETY: `storage` holds an address of `msg_namelen` bytes, as `SockAddr::new` needs.
        unsafe { socket2::SockAddr::new(storage, msg.msg_namelen) }.as_socket()
    } else {
        None
    };
    let control_truncated = msg.msg_flags & libc::MSG_CTRUNC != 0;
    let (kernel_ns, drops) = if control_truncated {
        (None, None)
    } else {
        parse_control(msg)
    };
    Received {
        len,
        from,
        kernel_ns,
        drops,
        read_ns,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        control_truncated,
    }
}

/// The timestamp and drop counter among the control messages of `msg`, each read only if its
/// `cmsg_len` covers its payload.
fn parse_control(msg: &libc::msghdr) -> (Option<i64>, Option<u32>) {
    let (mut stamp, mut drops) = (None, None);
    // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR walk the control buffer within `msg_controllen`
    // (as the kernel set it); each payload is read only after checking that `cmsg_len`
    // covers it, and read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let hdr = &*cmsg;
            let covers =
                |bytes: usize| hdr.cmsg_len as usize >= libc::CMSG_LEN(bytes as _) as usize;
            if hdr.cmsg_level == libc::SOL_SOCKET {
                if hdr.cmsg_type == libc::SCM_TIMESTAMPNS && covers(size_of::<libc::timespec>()) {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    stamp = timespec_ns(ts.tv_sec, ts.tv_nsec);
                } else if hdr.cmsg_type == libc::SO_RXQ_OVFL && covers(size_of::<u32>()) {
                    drops = Some(std::ptr::read_unaligned(
                        libc::CMSG_DATA(cmsg).cast::<u32>(),
                    ));
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    (stamp, drops)
}

/// A timespec as ns since the epoch; `None` for values out of range (never from a sane
/// kernel, but this is outside input to the parser).
fn timespec_ns(sec: i64, nsec: i64) -> Option<i64> {
    if !(0..1_000_000_000).contains(&nsec) {
        return None;
    }
    sec.checked_mul(1_000_000_000)?.checked_add(nsec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn timespec_conversion_rejects_nonsense() {
        assert_eq!(timespec_ns(2, 5), Some(2_000_000_005));
        assert_eq!(timespec_ns(1, 1_000_000_000), None);
        assert_eq!(timespec_ns(1, -1), None);
        assert_eq!(timespec_ns(i64::MAX, 0), None);
    }

    fn pair() -> (std::net::UdpSocket, std::net::UdpSocket) {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        (rx, tx)
    }

    #[test]
    fn a_batch_carries_every_datagram_with_its_stamp_and_sender() {
        let (rx, tx) = pair();
        assert_eq!(enable_kernel_stamps(rx.as_raw_fd()), (true, true));
        let mut reader = BatchReader::new(4);
        assert_eq!(
            reader
                .recv(rx.as_raw_fd(), false, |_, _| {})
                .unwrap_err()
                .kind(),
            io::ErrorKind::WouldBlock
        );
        // Ten datagrams, read 4 + 4 + 2: headers are reused across calls and every one of
        // them still gets its control messages (the nix bug this module avoids).
        let before = crate::time::unix_now_ns();
        for i in 0..10u8 {
            tx.send(&[i; 3]).unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 10 {
            match reader.recv(rx.as_raw_fd(), false, |m, p| got.push((m, p.to_vec()))) {
                Ok(n) => assert!(n <= 4),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        for (i, (m, p)) in got.iter().enumerate() {
            assert_eq!(p, &vec![i as u8; 3]);
            assert_eq!(m.from, Some(tx.local_addr().unwrap()));
            let stamp = m.kernel_ns.expect("kernel stamp on every datagram");
            assert!(stamp >= before - 1_000_000_000, "stamp is wall-clock time");
            assert!(!m.truncated && !m.control_truncated);
        }
    }

    #[test]
    fn oversized_datagrams_are_flagged() {
        let (rx, tx) = pair();
        tx.send(&vec![7u8; MAX_DATAGRAM + 100]).unwrap();
        let mut reader = BatchReader::new(2);
        let mut seen = None;
        for _ in 0..1000 {
            if reader
                .recv(rx.as_raw_fd(), false, |m, p| seen = Some((m, p.len())))
                .is_ok()
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let (m, len) = seen.expect("received");
        assert!(m.truncated);
        assert_eq!(len, MAX_DATAGRAM);
    }

    #[test]
    fn kernel_drops_are_reported_once_the_buffer_overflows() {
        let (rx, tx) = pair();
        assert!(enable_kernel_stamps(rx.as_raw_fd()).1);
        // The smallest receive buffer the kernel allows holds only a few datagrams.
        set_int_option(rx.as_raw_fd(), libc::SO_RCVBUF, 1);
        for _ in 0..200 {
            let _ = tx.send(&[0u8; 512]);
        }
        let mut reader = BatchReader::new(8);
        let fd = rx.as_raw_fd();
        let drain = |reader: &mut BatchReader| {
            let mut most = None;
            while reader
                .recv(fd, false, |m, _| most = most.max(m.drops))
                .is_ok()
            {}
            most
        };
        // The kernel stamps each datagram with the drop count at the time it was queued
        // (`sock_skb_set_dropcount`), and attaches it only when non-zero: the ones queued
        // before the overflow carry none; the next one after it does.
        let mut drops = drain(&mut reader);
        tx.send(&[1u8; 8]).unwrap();
        for _ in 0..1000 {
            drops = drops.max(drain(&mut reader));
            if drops.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(drops.unwrap_or(0) > 0, "SO_RXQ_OVFL counts the overflow");
    }
}
