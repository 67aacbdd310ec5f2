//! A LuaSocket-compatible `socket` module written in Rust, so `require('socket')` works in
//! the stand-in without system packages.
//!
//! Results follow LuaSocket 3.0 (lunarmodules/luasocket `src/udp.c`, `src/tcp.c`,
//! `src/buffer.c`, `src/usocket.c`, `src/timeout.c`, `src/pierror.h`; read, not copied):
//! sockets are non-blocking underneath and waits use `poll` with the object's timeout;
//! counts are Lua floats (`lua_pushnumber`), ports from `receivefrom` are integers;
//! errors are `nil, message` with LuaSocket's message strings ("timeout", "closed",
//! "connection refused", UDP's "refused" for a closed socket, `strerror` otherwise).
//!
//! Fault injection: with a drop rate p, a fraction p of UDP sends is silently discarded
//! while still reporting success (seeded RNG shared by all scripts of the stand-in).

use std::cell::RefCell;
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mlua::{Lua, MultiValue, Table, UserData, UserDataMethods, Value};
use rand::rngs::StdRng;
use rand::Rng;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// LuaSocket's `UDP_DATAGRAMSIZE`: default size for `receive`/`receivefrom`.
const UDP_DATAGRAMSIZE: usize = 8192;
/// LuaSocket's buffer `STEPSIZE` and `BUF_SIZE`.
const STEP_SIZE: usize = 8192;
/// What `socket._VERSION` reports.
const VERSION: &str = "LuaSocket 3.0.0 (coppelia-bridge stand-in)";
/// LuaSocket's `PIE_NONAME`, used for every resolution failure.
const NONAME: &str = "host or service not provided, or not known";

/// Shared between all scripts of one stand-in: the drop fault and its RNG.
#[derive(Debug, Clone)]
pub struct SocketFaults {
    /// Fraction of UDP sends silently dropped, 0..=1.
    pub drop_rate: f64,
    /// Added to every `socket.gettime()`, s: the scripts' host clock is off by this much.
    pub clock_offset_s: f64,
    pub rng: Rc<RefCell<StdRng>>,
}

impl SocketFaults {
    /// No fault.
    pub fn none() -> Self {
        use rand::SeedableRng;
        SocketFaults {
            drop_rate: 0.0,
            clock_offset_s: 0.0,
            rng: Rc::new(RefCell::new(StdRng::seed_from_u64(0))),
        }
    }

    fn drop_this(&self) -> bool {
        self.drop_rate > 0.0 && self.rng.borrow_mut().random::<f64>() < self.drop_rate
    }
}

/// LuaSocket's I/O outcomes (`IO_TIMEOUT`, `IO_CLOSED`, errno).
#[derive(Debug, Clone, Copy, PartialEq)]
enum IoErr {
    Timeout,
    Closed,
    Os(i32),
}

/// `socket_strerror` (usocket.c) with the messages of pierror.h.
fn socket_strerror(err: IoErr) -> String {
    match err {
        IoErr::Timeout => "timeout".into(),
        IoErr::Closed => "closed".into(),
        IoErr::Os(e) => match e {
            libc::EADDRINUSE => "address already in use".into(),
            libc::EISCONN => "already connected".into(),
            libc::EACCES => "permission denied".into(),
            libc::ECONNREFUSED => "connection refused".into(),
            libc::ECONNABORTED | libc::ECONNRESET => "closed".into(),
            libc::ETIMEDOUT => "connection timeout".into(),
            other => strerror(other),
        },
    }
}

/// `udp_strerror`: a closed error on UDP means the address was refused.
fn udp_strerror(err: IoErr) -> String {
    if err == IoErr::Closed {
        "refused".into()
    } else {
        socket_strerror(err)
    }
}

fn strerror(errno: i32) -> String {
    // The C library's message, as LuaSocket's `strerror(err)` gives (without Rust's
    // " (os error N)" suffix).
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

fn os_err(e: &std::io::Error) -> IoErr {
    match e.raw_os_error() {
        Some(code) => IoErr::Os(code),
        None if e.kind() == ErrorKind::TimedOut => IoErr::Timeout,
        None => IoErr::Os(libc::EIO),
    }
}

/// LuaSocket's timeout object (timeout.c): a per-call block timeout and a total timeout,
/// negative = infinite.
#[derive(Debug, Clone, Copy)]
struct Timeout {
    block: f64,
    total: f64,
    start: Instant,
}

impl Timeout {
    fn new() -> Self {
        Timeout {
            block: -1.0,
            total: -1.0,
            start: Instant::now(),
        }
    }

    fn mark_start(&mut self) {
        self.start = Instant::now();
    }

    fn is_zero(&self) -> bool {
        self.block == 0.0
    }

    /// `timeout_getretry`: seconds left, negative = infinite.
    fn retry(&self) -> f64 {
        let left = || (self.total - self.start.elapsed().as_secs_f64()).max(0.0);
        match (self.block < 0.0, self.total < 0.0) {
            (true, true) => -1.0,
            (true, false) => left(),
            (false, true) => self.block,
            (false, false) => self.block.min(left()),
        }
    }

    /// `settimeout(value [, mode])`: mode "b" (default) or "t"; nil or negative = infinite.
    fn set(&mut self, value: Option<f64>, mode: &str) -> mlua::Result<()> {
        let value = value.unwrap_or(-1.0);
        match mode.chars().next() {
            Some('b') => self.block = value,
            Some('t') | Some('r') => self.total = value,
            _ => return Err(arg_error(3, "settimeout", "invalid timeout mode")),
        }
        Ok(())
    }
}

/// `socket_waitfd`: waits for `events` with the timeout; for connects, an error or
/// readable socket means the attempt finished and is reported as closed.
fn wait_fd(fd: i32, events: i16, tm: &Timeout) -> Result<(), IoErr> {
    if tm.is_zero() {
        return Err(IoErr::Timeout);
    }
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        let t = (tm.retry() * 1e3) as i32;
        // SAFETY: `pfd` is a valid pollfd for the duration of the call; nfds = 1.
        let ret = unsafe { libc::poll(&mut pfd, 1, if t >= 0 { t } else { -1 }) };
        if ret == -1 {
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            if errno == libc::EINTR {
                continue;
            }
            return Err(IoErr::Os(errno));
        }
        if ret == 0 {
            return Err(IoErr::Timeout);
        }
        let connecting = events == (libc::POLLIN | libc::POLLOUT);
        if connecting && pfd.revents & (libc::POLLIN | libc::POLLERR) != 0 {
            return Err(IoErr::Closed);
        }
        return Ok(());
    }
}

fn arg_error(n: usize, func: &str, msg: &str) -> mlua::Error {
    mlua::Error::RuntimeError(format!("bad argument #{n} to '{func}' ({msg})"))
}

/// `luaL_checkstring`: strings and numbers (converted as Lua does).
fn check_string(v: &Value, n: usize, func: &str) -> mlua::Result<Vec<u8>> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Integer(i) => Ok(i.to_string().into_bytes()),
        Value::Number(f) => Ok(lua_number_text(*f).into_bytes()),
        other => Err(arg_error(
            n,
            func,
            &format!("string expected, got {}", other.type_name()),
        )),
    }
}

fn lua_number_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn check_text(v: &Value, n: usize, func: &str) -> mlua::Result<String> {
    Ok(String::from_utf8_lossy(&check_string(v, n, func)?).into_owned())
}

fn opt_number(v: &Value, n: usize, func: &str) -> mlua::Result<Option<f64>> {
    match v {
        Value::Nil => Ok(None),
        Value::Integer(i) => Ok(Some(*i as f64)),
        Value::Number(f) => Ok(Some(*f)),
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| arg_error(n, func, "number expected, got string")),
        other => Err(arg_error(
            n,
            func,
            &format!("number expected, got {}", other.type_name()),
        )),
    }
}

fn arg(args: &MultiValue, i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Nil)
}

fn fail(lua: &Lua, msg: String) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        Value::Nil,
        Value::String(lua.create_string(msg)?),
    ]))
}

fn ok_number(n: f64) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![Value::Number(n)]))
}

/// Numeric host and port, as `sendto` requires (`AI_NUMERICHOST | AI_NUMERICSERV`).
fn numeric_addr(ip: &str, port: &str) -> Option<SocketAddr> {
    let ip: IpAddr = ip.parse().ok()?;
    let port: u16 = port.trim().parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

/// `getaddrinfo` for connects: names are resolved; `family` filters when already known.
fn resolve(host: &str, port: &str, family: Option<Domain>) -> Result<Vec<SocketAddr>, String> {
    let port: u16 = port.trim().parse().map_err(|_| NONAME.to_owned())?;
    let host = if host == "*" { "0.0.0.0" } else { host };
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| NONAME.to_owned())?
        .filter(|a| family.is_none_or(|f| f == Domain::for_address(*a)))
        .collect();
    if addrs.is_empty() {
        return Err(NONAME.to_owned());
    }
    Ok(addrs)
}

fn new_socket(domain: Domain, ty: Type, proto: Protocol) -> Result<Socket, String> {
    let s = Socket::new(domain, ty, Some(proto)).map_err(|e| socket_strerror(os_err(&e)))?;
    s.set_nonblocking(true)
        .map_err(|e| socket_strerror(os_err(&e)))?;
    Ok(s)
}

fn addr_parts(addr: SocketAddr) -> (String, u16, &'static str) {
    let family = if addr.is_ipv4() { "inet" } else { "inet6" };
    (addr.ip().to_string(), addr.port(), family)
}

fn name_result(lua: &Lua, addr: std::io::Result<SocketAddr>) -> mlua::Result<MultiValue> {
    match addr {
        Ok(a) => {
            let (ip, port, family) = addr_parts(a);
            Ok(MultiValue::from_vec(vec![
                Value::String(lua.create_string(ip)?),
                Value::Integer(i64::from(port)),
                Value::String(lua.create_string(family)?),
            ]))
        }
        Err(e) => fail(lua, socket_strerror(os_err(&e))),
    }
}

/// Registers `socket` (and `socket.core`) in `package.preload` and returns the table.
pub fn register(lua: &Lua, faults: SocketFaults) -> mlua::Result<Table> {
    let socket = lua.create_table()?;
    socket.set("_VERSION", VERSION)?;
    socket.set("_DATAGRAMSIZE", UDP_DATAGRAMSIZE as i64)?;
    for (name, domain) in [
        ("udp", None),
        ("udp4", Some(Domain::IPV4)),
        ("udp6", Some(Domain::IPV6)),
    ] {
        let f = faults.clone();
        socket.set(
            name,
            lua.create_function(move |lua, ()| new_udp(lua, domain, f.clone()))?,
        )?;
    }
    for (name, domain) in [
        ("tcp", None),
        ("tcp4", Some(Domain::IPV4)),
        ("tcp6", Some(Domain::IPV6)),
    ] {
        socket.set(
            name,
            lua.create_function(move |lua, ()| new_tcp(lua, domain))?,
        )?;
    }
    let offset = faults.clock_offset_s;
    socket.set(
        "gettime",
        lua.create_function(move |_, ()| Ok(unix_time_s() + offset))?,
    )?;
    socket.set(
        "sleep",
        lua.create_function(|_, n: f64| {
            // timeout.c: negative sleeps nothing.
            std::thread::sleep(Duration::from_secs_f64(n.clamp(0.0, f64::from(i32::MAX))));
            Ok(())
        })?,
    )?;
    let connect: mlua::Function = lua
        .load(
            r#"local socket = ...
return function(address, port)
    local sock, err = socket.tcp()
    if not sock then return nil, err end
    local ok, cerr = sock:connect(address, port)
    if not ok then sock:close() return nil, cerr end
    return sock
end"#,
        )
        .set_name("=socket.connect")
        .call(socket.clone())?;
    socket.set("connect", connect)?;
    let loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
    loaded.set("socket", socket.clone())?;
    loaded.set("socket.core", socket.clone())?;
    Ok(socket)
}

/// `socket.gettime()`: Unix epoch seconds, microsecond resolution (gettimeofday).
pub fn unix_time_s() -> f64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.as_micros() as f64 / 1e6
}

// ---------------------------------------------------------------------------------------
// UDP

/// `udp{unconnected}` / `udp{connected}`.
#[derive(Debug)]
pub struct LuaUdp {
    sock: Option<UdpSocket>,
    family: Option<Domain>,
    connected: bool,
    closed: bool,
    tm: Timeout,
    faults: SocketFaults,
}

fn new_udp(lua: &Lua, family: Option<Domain>, faults: SocketFaults) -> mlua::Result<MultiValue> {
    let mut udp = LuaUdp {
        sock: None,
        family,
        connected: false,
        closed: false,
        tm: Timeout::new(),
        faults,
    };
    if let Some(domain) = family {
        match new_socket(domain, Type::DGRAM, Protocol::UDP) {
            Ok(s) => udp.sock = Some(s.into()),
            Err(e) => return fail(lua, e),
        }
    }
    Ok(MultiValue::from_vec(vec![Value::UserData(
        lua.create_userdata(udp)?,
    )]))
}

impl LuaUdp {
    fn class(&self) -> &'static str {
        if self.connected {
            "udp{connected}"
        } else {
            "udp{unconnected}"
        }
    }

    fn check_class(&self, want_connected: bool, func: &str) -> mlua::Result<()> {
        if self.connected == want_connected {
            Ok(())
        } else {
            let want = if want_connected {
                "udp{connected}"
            } else {
                "udp{unconnected}"
            };
            Err(arg_error(1, func, &format!("{want} expected")))
        }
    }

    /// Creates the socket on first use (LuaSocket 3.0 `socket.udp()` is AF_UNSPEC).
    fn ensure_socket(&mut self, domain: Domain) -> Result<(), String> {
        if self.sock.is_none() && !self.closed {
            self.sock = Some(new_socket(domain, Type::DGRAM, Protocol::UDP)?.into());
            self.family = Some(domain);
        }
        Ok(())
    }

    fn fd(&self) -> i32 {
        self.sock.as_ref().map_or(-1, |s| s.as_raw_fd())
    }

    /// `socket_send` / `socket_sendto` loop: retry on EAGAIN after waiting for writability.
    fn send_loop(
        &self,
        mut op: impl FnMut(&UdpSocket) -> std::io::Result<usize>,
    ) -> Result<usize, IoErr> {
        let sock = self.sock.as_ref().ok_or(IoErr::Closed)?;
        loop {
            match op(sock) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Err(IoErr::Closed),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    wait_fd(self.fd(), libc::POLLOUT, &self.tm)?
                }
                Err(e) => return Err(os_err(&e)),
            }
        }
    }

    fn recv_loop<T>(
        &self,
        mut op: impl FnMut(&UdpSocket) -> std::io::Result<T>,
    ) -> Result<T, IoErr> {
        let sock = self.sock.as_ref().ok_or(IoErr::Closed)?;
        loop {
            match op(sock) {
                Ok(v) => return Ok(v),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    wait_fd(self.fd(), libc::POLLIN, &self.tm)?
                }
                Err(e) => return Err(os_err(&e)),
            }
        }
    }

    fn sendto(&mut self, lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
        self.check_class(false, "sendto")?;
        let data = check_string(&arg(args, 0), 2, "sendto")?;
        let ip = check_text(&arg(args, 1), 3, "sendto")?;
        let port = check_text(&arg(args, 2), 4, "sendto")?;
        let Some(addr) = numeric_addr(&ip, &port) else {
            return fail(lua, NONAME.into());
        };
        if self.family.is_some_and(|f| f != Domain::for_address(addr)) {
            return fail(lua, NONAME.into());
        }
        if let Err(e) = self.ensure_socket(Domain::for_address(addr)) {
            return fail(lua, e);
        }
        self.tm.mark_start();
        if self.sock.is_some() && self.faults.drop_this() {
            return ok_number(data.len() as f64);
        }
        match self.send_loop(|s| s.send_to(&data, addr)) {
            Ok(n) => ok_number(n as f64),
            Err(e) => fail(lua, udp_strerror(e)),
        }
    }

    fn send(&mut self, lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
        self.check_class(true, "send")?;
        let data = check_string(&arg(args, 0), 2, "send")?;
        self.tm.mark_start();
        if self.sock.is_some() && self.faults.drop_this() {
            return ok_number(data.len() as f64);
        }
        match self.send_loop(|s| s.send(&data)) {
            Ok(n) => ok_number(n as f64),
            Err(e) => fail(lua, udp_strerror(e)),
        }
    }

    fn wanted(args: &MultiValue, func: &str) -> mlua::Result<usize> {
        Ok(opt_number(&arg(args, 0), 2, func)?.map_or(UDP_DATAGRAMSIZE, |n| n.max(0.0) as usize))
    }

    fn receive(&mut self, lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
        let mut buf = vec![0u8; Self::wanted(args, "receive")?];
        self.tm.mark_start();
        // udp.c: an invalid (closed or not yet created) socket reports IO_CLOSED, which
        // receive treats like a zero-length datagram.
        let got = match self.recv_loop(|s| s.recv(&mut buf)) {
            Ok(n) => n,
            Err(IoErr::Closed) => 0,
            Err(e) => return fail(lua, udp_strerror(e)),
        };
        Ok(MultiValue::from_vec(vec![Value::String(
            lua.create_string(&buf[..got])?,
        )]))
    }

    fn receivefrom(&mut self, lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
        self.check_class(false, "receivefrom")?;
        let mut buf = vec![0u8; Self::wanted(args, "receivefrom")?];
        self.tm.mark_start();
        match self.recv_loop(|s| s.recv_from(&mut buf)) {
            Ok((n, from)) => {
                let (ip, port, _) = addr_parts(from);
                Ok(MultiValue::from_vec(vec![
                    Value::String(lua.create_string(&buf[..n])?),
                    Value::String(lua.create_string(ip)?),
                    Value::Integer(i64::from(port)),
                ]))
            }
            Err(e) => fail(lua, udp_strerror(e)),
        }
    }

    fn setpeername(&mut self, lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
        let address = check_text(&arg(args, 0), 2, "setpeername")?;
        if address == "*" {
            // Disconnect: connect to AF_UNSPEC; errors ignored as in udp.c.
            if let Some(s) = &self.sock {
                disconnect(s.as_raw_fd());
            }
            self.connected = false;
            return ok_number(1.0);
        }
        let port = check_text(&arg(args, 1), 3, "setpeername")?;
        let addrs = match resolve(&address, &port, self.family) {
            Ok(a) => a,
            Err(e) => return fail(lua, e),
        };
        let mut last = NONAME.to_owned();
        for addr in addrs {
            if let Err(e) = self.ensure_socket(Domain::for_address(addr)) {
                last = e;
                continue;
            }
            let Some(sock) = &self.sock else {
                return fail(lua, socket_strerror(IoErr::Closed));
            };
            match sock.connect(addr) {
                Ok(()) => {
                    self.connected = true;
                    return ok_number(1.0);
                }
                Err(e) => last = socket_strerror(os_err(&e)),
            }
        }
        fail(lua, last)
    }

    fn setsockname(&mut self, lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
        self.check_class(false, "setsockname")?;
        let address = check_text(&arg(args, 0), 2, "setsockname")?;
        let port = check_text(&arg(args, 1), 3, "setsockname")?;
        let addrs = match resolve(&address, &port, self.family) {
            Ok(a) => a,
            Err(e) => return fail(lua, e),
        };
        let mut last = NONAME.to_owned();
        for addr in addrs {
            let domain = Domain::for_address(addr);
            let sock = match new_socket(domain, Type::DGRAM, Protocol::UDP) {
                Ok(s) => s,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            match sock.bind(&SockAddr::from(addr)) {
                Ok(()) => {
                    self.sock = Some(sock.into());
                    self.family = Some(domain);
                    return ok_number(1.0);
                }
                Err(e) => last = socket_strerror(os_err(&e)),
            }
        }
        fail(lua, last)
    }

    fn setoption(&mut self, lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
        let name = check_text(&arg(args, 0), 2, "setoption")?;
        let value = arg(args, 1);
        let Some(sock) = &self.sock else {
            return fail(lua, socket_strerror(IoErr::Closed));
        };
        let on = matches!(value, Value::Boolean(true));
        let result = match name.as_str() {
            "broadcast" => sock.set_broadcast(on),
            "reuseaddr" => socket2::SockRef::from(sock).set_reuse_address(on),
            "recv-buffer-size" | "send-buffer-size" => {
                let size = opt_number(&value, 3, "setoption")?.unwrap_or(0.0) as usize;
                let r = socket2::SockRef::from(sock);
                if name.starts_with("recv") {
                    r.set_recv_buffer_size(size)
                } else {
                    r.set_send_buffer_size(size)
                }
            }
            _ => return Err(arg_error(2, "setoption", "unsupported option")),
        };
        match result {
            Ok(()) => ok_number(1.0),
            Err(e) => fail(lua, socket_strerror(os_err(&e))),
        }
    }

    fn close(&mut self) -> mlua::Result<MultiValue> {
        self.sock = None;
        self.closed = true;
        ok_number(1.0)
    }
}

/// `connect(fd, AF_UNSPEC)`: dissolves a UDP association (inet_trydisconnect).
fn disconnect(fd: i32) {
    // SAFETY: a zeroed sockaddr with family AF_UNSPEC is a valid argument to connect(2)
    // for this purpose; the length is that of the struct passed.
    unsafe {
        let mut addr: libc::sockaddr = std::mem::zeroed();
        addr.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
        libc::connect(
            fd,
            &addr,
            std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
        );
    }
}

impl UserData for LuaUdp {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("sendto", |lua, this, args: MultiValue| {
            this.sendto(lua, &args)
        });
        methods.add_method_mut("send", |lua, this, args: MultiValue| this.send(lua, &args));
        methods.add_method_mut("receive", |lua, this, args: MultiValue| {
            this.receive(lua, &args)
        });
        methods.add_method_mut("receivefrom", |lua, this, args: MultiValue| {
            this.receivefrom(lua, &args)
        });
        methods.add_method_mut("setpeername", |lua, this, args: MultiValue| {
            this.setpeername(lua, &args)
        });
        methods.add_method_mut("setsockname", |lua, this, args: MultiValue| {
            this.setsockname(lua, &args)
        });
        methods.add_method_mut("setoption", |lua, this, args: MultiValue| {
            this.setoption(lua, &args)
        });
        methods.add_method_mut("close", |_, this, ()| this.close());
        methods.add_method_mut("settimeout", |_, this, args: MultiValue| {
            let value = opt_number(&arg(&args, 0), 2, "settimeout")?;
            let mode = match arg(&args, 1) {
                Value::Nil => "b".to_owned(),
                v => check_text(&v, 3, "settimeout")?,
            };
            this.tm.set(value, &mode)?;
            ok_number(1.0)
        });
        methods.add_method("getsockname", |lua, this, ()| match &this.sock {
            Some(s) => name_result(lua, s.local_addr()),
            None => fail(lua, strerror(libc::EBADF)),
        });
        methods.add_method("getpeername", |lua, this, ()| {
            this.check_class(true, "getpeername")?;
            match &this.sock {
                Some(s) => name_result(lua, s.peer_addr()),
                None => fail(lua, strerror(libc::EBADF)),
            }
        });
        methods.add_method("getfamily", |_, this, ()| {
            Ok(if this.family == Some(Domain::IPV6) {
                "inet6"
            } else {
                "inet4"
            })
        });
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("{}: {:p}", this.class(), this as *const Self))
        });
    }
}

// ---------------------------------------------------------------------------------------
// TCP

/// `tcp{master}` / `tcp{client}` (no server side: bind/listen/accept are not provided).
#[derive(Debug)]
pub struct LuaTcp {
    sock: Option<Socket>,
    family: Option<Domain>,
    client: bool,
    tm: Timeout,
    /// LuaSocket's receive buffer: bytes read from the socket and not yet returned.
    buffer: Vec<u8>,
}

fn new_tcp(lua: &Lua, family: Option<Domain>) -> mlua::Result<MultiValue> {
    let mut tcp = LuaTcp {
        sock: None,
        family,
        client: false,
        tm: Timeout::new(),
        buffer: Vec::new(),
    };
    if let Some(domain) = family {
        match new_socket(domain, Type::STREAM, Protocol::TCP) {
            Ok(s) => tcp.sock = Some(s),
            Err(e) => return fail(lua, e),
        }
    }
    Ok(MultiValue::from_vec(vec![Value::UserData(
        lua.create_userdata(tcp)?,
    )]))
}

/// What `receive` was asked for.
enum Pattern {
    Line,
    All,
    Bytes(usize),
}

impl LuaTcp {
    fn check_client(&self, func: &str) -> mlua::Result<()> {
        if self.client {
            Ok(())
        } else {
            Err(arg_error(1, func, "tcp{client} expected"))
        }
    }

    fn fd(&self) -> i32 {
        self.sock.as_ref().map_or(-1, |s| s.as_raw_fd())
    }

    /// `socket_connect`: EINPROGRESS waits (or times out at once with timeout 0); a
    /// second call reports the kernel's answer ("already connected", EALREADY's text…).
    fn connect_one(&self, addr: SocketAddr) -> Result<(), IoErr> {
        let sock = self.sock.as_ref().ok_or(IoErr::Closed)?;
        let err = loop {
            match sock.connect(&SockAddr::from(addr)) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => break e.raw_os_error().unwrap_or(libc::EIO),
            }
        };
        if err != libc::EINPROGRESS && err != libc::EAGAIN {
            return Err(IoErr::Os(err));
        }
        if self.tm.is_zero() {
            return Err(IoErr::Timeout);
        }
        match wait_fd(self.fd(), libc::POLLIN | libc::POLLOUT, &self.tm) {
            Err(IoErr::Closed) => match sock.take_error() {
                Ok(None) => Ok(()),
                Ok(Some(e)) => Err(os_err(&e)),
                Err(e) => Err(os_err(&e)),
            },
            other => other,
        }
    }

    fn connect(&mut self, lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
        let address = check_text(&arg(args, 0), 2, "connect")?;
        let port = check_text(&arg(args, 1), 3, "connect")?;
        self.tm.mark_start();
        let result = self.try_connect(&address, &port);
        // tcp.c sets the client class even on failure, for non-blocking connects.
        self.client = true;
        match result {
            Ok(()) => ok_number(1.0),
            Err(e) => fail(lua, e),
        }
    }

    /// `inet_tryconnect`: tries every resolved address, creating the socket per family.
    fn try_connect(&mut self, address: &str, port: &str) -> Result<(), String> {
        let addrs = resolve(address, port, self.family)?;
        let mut err = NONAME.to_owned();
        for addr in addrs {
            self.tm.mark_start();
            let domain = Domain::for_address(addr);
            if self.sock.is_none() || self.family != Some(domain) {
                match new_socket(domain, Type::STREAM, Protocol::TCP) {
                    Ok(s) => {
                        self.sock = Some(s);
                        self.family = Some(domain);
                    }
                    Err(e) => {
                        err = e;
                        continue;
                    }
                }
            }
            match self.connect_one(addr) {
                Ok(()) => return Ok(()),
                Err(e) => err = socket_strerror(e),
            }
            if self.tm.is_zero() {
                break;
            }
        }
        Err(err)
    }

    /// `socket_send` for one chunk.
    fn send_chunk(&self, data: &[u8]) -> Result<usize, IoErr> {
        let sock = self.sock.as_ref().ok_or(IoErr::Closed)?;
        loop {
            match sock.send_with_flags(data, libc::MSG_NOSIGNAL) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Err(IoErr::Closed),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    wait_fd(self.fd(), libc::POLLOUT, &self.tm)?
                }
                Err(e) => return Err(os_err(&e)),
            }
        }
    }

    /// `buffer_meth_send`: returns the index of the last byte sent, or nil, err, last index.
    fn send(&mut self, lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
        self.check_client("send")?;
        let data = check_string(&arg(args, 0), 2, "send")?;
        let size = data.len() as i64;
        let mut start = opt_number(&arg(args, 1), 3, "send")?.map_or(1, |n| n as i64);
        let mut end = opt_number(&arg(args, 2), 4, "send")?.map_or(-1, |n| n as i64);
        self.tm.mark_start();
        if start < 0 {
            start += size + 1;
        }
        if end < 0 {
            end += size + 1;
        }
        start = start.max(1);
        end = end.min(size);
        let mut sent = 0usize;
        let mut err = None;
        if start <= end {
            let slice = &data[(start - 1) as usize..end as usize];
            while sent < slice.len() {
                let step = (slice.len() - sent).min(STEP_SIZE);
                match self.send_chunk(&slice[sent..sent + step]) {
                    Ok(n) => sent += n,
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
        }
        let last = Value::Number((sent as i64 + start - 1) as f64);
        match err {
            None => Ok(MultiValue::from_vec(vec![last, Value::Nil, Value::Nil])),
            Some(e) => Ok(MultiValue::from_vec(vec![
                Value::Nil,
                Value::String(lua.create_string(socket_strerror(e))?),
                last,
            ])),
        }
    }

    /// `buffer_get`: refills the buffer from the socket when empty.
    fn fill(&mut self) -> Result<(), IoErr> {
        if !self.buffer.is_empty() {
            return Ok(());
        }
        let mut chunk = vec![0u8; STEP_SIZE];
        let sock = self.sock.as_ref().ok_or(IoErr::Closed)?;
        loop {
            match (&*sock).read(&mut chunk) {
                Ok(0) => return Err(IoErr::Closed),
                Ok(n) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    wait_fd(self.fd(), libc::POLLIN, &self.tm)?
                }
                Err(e) => return Err(os_err(&e)),
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.buffer.len());
        self.buffer.drain(..n).collect()
    }

    fn recv_pattern(&mut self, pattern: &Pattern, out: &mut Vec<u8>) -> Result<(), IoErr> {
        match pattern {
            Pattern::Bytes(wanted) => {
                while out.len() < *wanted {
                    self.fill()?;
                    let chunk = self.take(*wanted - out.len());
                    out.extend_from_slice(&chunk);
                }
                Ok(())
            }
            Pattern::Line => loop {
                self.fill()?;
                let newline = self.buffer.iter().position(|&b| b == b'\n');
                let upto = newline.unwrap_or(self.buffer.len());
                // buffer.c recvline: CRs are dropped, the LF ends the line.
                out.extend(self.buffer[..upto].iter().filter(|&&b| b != b'\r'));
                match newline {
                    Some(pos) => {
                        self.take(pos + 1);
                        return Ok(());
                    }
                    None => {
                        self.take(upto);
                    }
                }
            },
            Pattern::All => loop {
                match self.fill() {
                    Ok(()) => {
                        let all = self.take(usize::MAX);
                        out.extend_from_slice(&all);
                    }
                    Err(IoErr::Closed) if !out.is_empty() => return Ok(()),
                    Err(e) => return Err(e),
                }
            },
        }
    }

    /// `buffer_meth_receive`: data or nil, err, partial.
    fn receive(&mut self, lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
        self.check_client("receive")?;
        let prefix = match arg(args, 1) {
            Value::Nil => Vec::new(),
            v => check_string(&v, 3, "receive")?,
        };
        let pattern = match arg(args, 0) {
            Value::Nil => Pattern::Line,
            Value::Integer(n) if n >= 0 => Pattern::Bytes(n as usize),
            Value::Number(n) if n >= 0.0 => Pattern::Bytes(n as usize),
            Value::String(s) if s.as_bytes().starts_with(b"*l") || &*s.as_bytes() == b"l" => {
                Pattern::Line
            }
            Value::String(s) if s.as_bytes().starts_with(b"*a") || &*s.as_bytes() == b"a" => {
                Pattern::All
            }
            _ => return Err(arg_error(2, "receive", "invalid receive pattern")),
        };
        // A numeric pattern counts the prefix as already received.
        let pattern = match pattern {
            Pattern::Bytes(n) => Pattern::Bytes(n.max(prefix.len())),
            p => p,
        };
        self.tm.mark_start();
        let mut out = prefix;
        match self.recv_pattern(&pattern, &mut out) {
            Ok(()) => Ok(MultiValue::from_vec(vec![
                Value::String(lua.create_string(&out)?),
                Value::Nil,
                Value::Nil,
            ])),
            Err(e) => Ok(MultiValue::from_vec(vec![
                Value::Nil,
                Value::String(lua.create_string(socket_strerror(e))?),
                Value::String(lua.create_string(&out)?),
            ])),
        }
    }

    fn setoption(&mut self, lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
        let name = check_text(&arg(args, 0), 2, "setoption")?;
        let on = matches!(arg(args, 1), Value::Boolean(true));
        let Some(sock) = &self.sock else {
            return fail(lua, socket_strerror(IoErr::Closed));
        };
        let result = match name.as_str() {
            "tcp-nodelay" => sock.set_nodelay(on),
            "keepalive" => sock.set_keepalive(on),
            "reuseaddr" => sock.set_reuse_address(on),
            _ => return Err(arg_error(2, "setoption", "unsupported option")),
        };
        match result {
            Ok(()) => ok_number(1.0),
            Err(e) => fail(lua, socket_strerror(os_err(&e))),
        }
    }
}

fn sock_name(lua: &Lua, addr: std::io::Result<SockAddr>) -> mlua::Result<MultiValue> {
    name_result(
        lua,
        addr.and_then(|a| {
            a.as_socket()
                .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
        }),
    )
}

impl UserData for LuaTcp {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("connect", |lua, this, args: MultiValue| {
            this.connect(lua, &args)
        });
        methods.add_method_mut("send", |lua, this, args: MultiValue| this.send(lua, &args));
        methods.add_method_mut("receive", |lua, this, args: MultiValue| {
            this.receive(lua, &args)
        });
        methods.add_method_mut("setoption", |lua, this, args: MultiValue| {
            this.setoption(lua, &args)
        });
        methods.add_method_mut("close", |_, this, ()| {
            this.sock = None;
            this.buffer.clear();
            ok_number(1.0)
        });
        methods.add_method_mut("settimeout", |_, this, args: MultiValue| {
            let value = opt_number(&arg(&args, 0), 2, "settimeout")?;
            let mode = match arg(&args, 1) {
                Value::Nil => "b".to_owned(),
                v => check_text(&v, 3, "settimeout")?,
            };
            this.tm.set(value, &mode)?;
            ok_number(1.0)
        });
        methods.add_method("shutdown", |_, this, how: Option<String>| {
            this.check_client("shutdown")?;
            let how = match how.as_deref().unwrap_or("both") {
                "receive" => std::net::Shutdown::Read,
                "send" => std::net::Shutdown::Write,
                _ => std::net::Shutdown::Both,
            };
            if let Some(s) = &this.sock {
                // tcp.c ignores the result and returns 1.
                let _ = s.shutdown(how);
            }
            ok_number(1.0)
        });
        methods.add_method("getsockname", |lua, this, ()| match &this.sock {
            Some(s) => sock_name(lua, s.local_addr()),
            None => fail(lua, strerror(libc::EBADF)),
        });
        methods.add_method("getpeername", |lua, this, ()| {
            this.check_client("getpeername")?;
            match &this.sock {
                Some(s) => sock_name(lua, s.peer_addr()),
                None => fail(lua, strerror(libc::EBADF)),
            }
        });
        methods.add_method("getfamily", |_, this, ()| {
            Ok(if this.family == Some(Domain::IPV6) {
                "inet6"
            } else {
                "inet4"
            })
        });
        methods.add_meta_method("__tostring", |_, this, ()| {
            let class = if this.client {
                "tcp{client}"
            } else {
                "tcp{master}"
            };
            Ok(format!("{class}: {:p}", this as *const Self))
        });
    }
}
