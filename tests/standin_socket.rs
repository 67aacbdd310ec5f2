//! The stand-in's Rust `socket` module against real loopback sockets: return values and
//! error strings as LuaSocket 3.0 gives them (lunarmodules/luasocket udp.c, tcp.c,
//! buffer.c, usocket.c, pierror.h; docs/udp.html, docs/tcp.html).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use coppelia_bridge::standin::socket_lib::{register, SocketFaults};
use mlua::Lua;

/// Lua with `socket` and `show(...)`, which renders results with their Lua types, e.g.
/// `float:36.0 | nil | string:timeout`.
fn lua() -> Lua {
    let lua = Lua::new();
    register(&lua, SocketFaults::none()).unwrap();
    lua.load(
        r#"socket = require('socket')
function show(...)
    local out = {}
    for i = 1, select('#', ...) do
        local v = select(i, ...)
        local ty = type(v) == 'number' and math.type(v) or type(v)
        out[#out + 1] = v == nil and 'nil' or (ty .. ':' .. tostring(v))
    end
    return table.concat(out, ' | ')
end"#,
    )
    .exec()
    .unwrap();
    lua
}

fn eval(lua: &Lua, code: &str) -> String {
    lua.load(code)
        .eval::<String>()
        .unwrap_or_else(|e| panic!("{code}: {e}"))
}

#[test]
fn udp_sendto_returns_the_byte_count_as_a_float() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let lua = lua();
    lua.globals()
        .set("port", rx.local_addr().unwrap().port())
        .unwrap();
    assert_eq!(
        eval(
            &lua,
            "u = socket.udp() return show(u:sendto('hello', '127.0.0.1', port))"
        ),
        "float:5.0"
    );
    let mut buf = [0u8; 16];
    let (n, from) = rx.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    // receivefrom: data, ip string, port integer.
    rx.send_to(b"back", from).unwrap();
    assert_eq!(
        eval(
            &lua,
            "u:settimeout(5) local d, ip, p = u:receivefrom() return show(d, ip, math.type(p))"
        ),
        "string:back | string:127.0.0.1 | string:integer"
    );
    // Port given as a string works too (luaL_checkstring).
    assert_eq!(
        eval(
            &lua,
            "return show(u:sendto('x', '127.0.0.1', tostring(port)))"
        ),
        "float:1.0"
    );
}

#[test]
fn udp_timeouts_and_name_errors() {
    let lua = lua();
    assert_eq!(
        eval(&lua, "u = socket.udp() return show(u:settimeout(0))"),
        "float:1.0"
    );
    // No socket yet (created lazily on first use): receive sees a closed socket and
    // returns an empty datagram, as udp.c treats IO_CLOSED like a zero-length read.
    assert_eq!(eval(&lua, "return show(u:receive())"), "string:");
    let (_held, port) = common::refusing_udp_port();
    lua.globals().set("port", port).unwrap();
    eval(&lua, "return show(u:sendto('x', '127.0.0.1', port))");
    assert_eq!(
        eval(&lua, "return show(u:receive())"),
        "nil | string:timeout"
    );
    assert_eq!(
        eval(&lua, "return show(u:receivefrom())"),
        "nil | string:timeout"
    );
    // sendto takes numeric addresses only (AI_NUMERICHOST).
    assert_eq!(
        eval(&lua, "return show(u:sendto('x', 'localhost', port))"),
        "nil | string:host or service not provided, or not known"
    );
    // A float port becomes "8888.0", which getaddrinfo refuses (AI_NUMERICSERV).
    assert_eq!(
        eval(&lua, "return show(u:sendto('x', '127.0.0.1', 8888.0))"),
        "nil | string:host or service not provided, or not known"
    );
    // A blocking wait honours the timeout.
    assert_eq!(
        eval(&lua, "u:settimeout(0.05) return show(u:receive())"),
        "nil | string:timeout"
    );
    assert_eq!(eval(&lua, "return show(u:close())"), "float:1.0");
    assert_eq!(
        eval(&lua, "return show(u:sendto('x', '127.0.0.1', port))"),
        "nil | string:refused"
    );
}

#[test]
fn connected_udp_reports_connection_refused() {
    let lua = lua();
    let (_held, port) = common::refusing_udp_port();
    lua.globals().set("port", port).unwrap();
    assert_eq!(
        eval(
            &lua,
            "u = socket.udp() return show(u:setpeername('localhost', port))"
        ),
        "float:1.0"
    );
    assert_eq!(eval(&lua, "return show(u:send('ping'))"), "float:4.0");
    // The ICMP port-unreachable comes back on the connected socket.
    let got = eval(&lua, "u:settimeout(2) return show(u:receive())");
    assert_eq!(got, "nil | string:connection refused");
    // Class checks raise errors, as auxiliar_checkclass does.
    let err = lua
        .load("u:sendto('x', '127.0.0.1', port)")
        .exec()
        .unwrap_err()
        .to_string();
    assert!(err.contains("udp{unconnected} expected"), "{err}");
    let err = lua.load("u:receivefrom()").exec().unwrap_err().to_string();
    assert!(err.contains("udp{unconnected} expected"), "{err}");
    assert_eq!(
        eval(
            &lua,
            "local ip, p, fam = u:getsockname() return show(ip, math.type(p), fam)"
        ),
        "string:127.0.0.1 | string:integer | string:inet"
    );
    assert_eq!(eval(&lua, "return show(u:setpeername('*'))"), "float:1.0");
    let err = lua.load("u:send('x')").exec().unwrap_err().to_string();
    assert!(err.contains("udp{connected} expected"), "{err}");
    // After the disconnect the kernel forgets the local address (connect AF_UNSPEC).
    assert_eq!(
        eval(&lua, "local ip = u:getsockname() return show(ip)"),
        "string:0.0.0.0"
    );
}

#[test]
fn tcp_connect_refused_and_non_blocking_connect() {
    let lua = lua();
    let (_held, free) = common::refusing_tcp_port();
    lua.globals().set("free", free).unwrap();
    assert_eq!(
        eval(
            &lua,
            "local c = socket.tcp() c:settimeout(2) return show(c:connect('127.0.0.1', free))"
        ),
        "nil | string:connection refused"
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    lua.globals()
        .set("port", listener.local_addr().unwrap().port())
        .unwrap();
    // Timeout 0: the connect is in progress and reports "timeout" at once.
    assert_eq!(
        eval(
            &lua,
            "c = socket.tcp() c:settimeout(0) return show(c:connect('127.0.0.1', port))"
        ),
        "nil | string:timeout"
    );
    // Calling connect again reports the kernel's view: in progress, then connected.
    let again = eval(
        &lua,
        r#"for i = 1, 500 do
            local ok, err = c:connect('127.0.0.1', port)
            if err == 'already connected' then return show(ok, err) end
            socket.sleep(0.01)
        end
        return 'never connected'"#,
    );
    assert_eq!(again, "nil | string:already connected");
    let (_conn, _) = listener.accept().unwrap();
}

#[test]
fn tcp_send_and_receive_patterns() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let lua = lua();
    lua.globals()
        .set("port", listener.local_addr().unwrap().port())
        .unwrap();
    assert_eq!(
        eval(
            &lua,
            "c = socket.tcp() c:settimeout(2) return show(c:connect('127.0.0.1', port))"
        ),
        "float:1.0"
    );
    let (mut peer, _) = listener.accept().unwrap();
    // send returns the index of the last byte sent, then two nils.
    assert_eq!(
        eval(&lua, "return show(c:send('abcdef'))"),
        "float:6.0 | nil | nil"
    );
    assert_eq!(
        eval(&lua, "return show(c:send('abcdef', 3, 4))"),
        "float:4.0 | nil | nil"
    );
    let mut buf = [0u8; 8];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"abcdefcd");

    peer.write_all(b"line one\r\nrest").unwrap();
    assert_eq!(
        eval(&lua, "return show(c:receive())"),
        "string:line one | nil | nil"
    );
    assert_eq!(
        eval(&lua, "return show(c:receive(2))"),
        "string:re | nil | nil"
    );
    // Not enough data: nil, 'timeout', partial.
    assert_eq!(
        eval(&lua, "c:settimeout(0.05) return show(c:receive(10))"),
        "nil | string:timeout | string:st"
    );
    assert_eq!(
        eval(&lua, "return show(c:receive(3, 'ab'))"),
        "nil | string:timeout | string:ab"
    );
    peer.write_all(b"tail").unwrap();
    drop(peer);
    // '*a' reads until the peer closes and succeeds; afterwards the socket is closed.
    assert_eq!(
        eval(&lua, "c:settimeout(2) return show(c:receive('*a'))"),
        "string:tail | nil | nil"
    );
    assert_eq!(
        eval(&lua, "return show(c:receive())"),
        "nil | string:closed | string:"
    );
    assert_eq!(eval(&lua, "return show(c:close())"), "float:1.0");
    assert_eq!(
        eval(&lua, "return show(c:send('x'))"),
        "nil | string:closed | float:0.0"
    );
}

#[test]
fn gettime_is_unix_epoch_seconds_and_sleep_returns_nothing() {
    let lua = lua();
    let t: f64 = lua.load("return socket.gettime()").eval().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((t - now).abs() < 5.0, "{t} vs {now}");
    // Microsecond resolution: not rounded to milliseconds.
    let fractions: Vec<f64> = lua
        .load("local a = {} for i = 1, 20 do a[i] = socket.gettime() end return a")
        .eval()
        .unwrap();
    assert!(fractions
        .iter()
        .any(|f| ((f * 1e3).round() - f * 1e3).abs() > 1e-6));
    assert_eq!(
        eval(&lua, "return tostring(select('#', socket.sleep(0)))"),
        "0"
    );
    assert_eq!(eval(&lua, "return show(socket.sleep(-1))"), "");
}

#[test]
fn drop_fault_reports_success_without_sending() {
    use rand::SeedableRng;
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let lua = Lua::new();
    let faults = SocketFaults {
        drop_rate: 1.0,
        clock_offset_s: 0.0,
        rng: std::rc::Rc::new(std::cell::RefCell::new(rand::rngs::StdRng::seed_from_u64(
            1,
        ))),
    };
    register(&lua, faults).unwrap();
    lua.globals()
        .set("port", rx.local_addr().unwrap().port())
        .unwrap();
    let sent: f64 = lua
        .load("local s = require('socket') local u = s.udp() return u:sendto('gone', '127.0.0.1', port)")
        .eval()
        .unwrap();
    assert_eq!(sent, 4.0);
    let mut buf = [0u8; 8];
    assert!(rx.recv(&mut buf).is_err(), "nothing arrives at drop rate 1");
}

#[test]
fn clock_offset_fault_shifts_gettime() {
    let lua = Lua::new();
    let faults = SocketFaults {
        clock_offset_s: -3600.0,
        ..SocketFaults::none()
    };
    register(&lua, faults).unwrap();
    let t: f64 = lua
        .load("return require('socket').gettime()")
        .eval()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // An hour behind; 5 s of slack for a loaded machine between the two reads.
    assert!((t - (now - 3600.0)).abs() < 5.0, "{t} vs {now}");
}
