--[[ coppelia_bridge.lua: coppelia-bridge child script for CoppeliaSim 4.3-4.10 (Lua 5.3)

Attach this script to a dummy: as its child script (4.3-4.6, or a <childScript> in a simple XML
scene), or in 4.7+ as a simulation script object placed under the dummy in the scene hierarchy.
Every simulation pass it sends one timestamp to the coppelia-bridge (`coppelia-bridge run`),
which reports real-time factor, latency, rate, jitter and loss per dummy. Wire format:
docs/PROTOCOL.md (v1). It needs only `sim` and LuaSocket (`socket`), both shipped with
CoppeliaSim.

Which object it measures: sim.getObject('.'). In 4.7+ a script object is a scene object of its
own, and '.' is the script itself unless its "parent is proxy" option is on
(coppeliaSimLib@coppeliasim-v4.7.0-rev2:simInternal.cpp, simGetObject_internal). So when '.' is
a script object (sim.getObjectType(h) == sim.sceneobject_script, 4.8+, or sim.object_script_type,
4.7; both 17) the script measures its parent sim.getObject('..') instead: alias, id and
extension string are the dummy's. The HELLO's name is the alias of the object measured.

Configuration (first match wins: named parameter > extension string > embedded > default):
  setting     named parameter (-G on the command line)  extension string   default
  host        -Gcoppelia_bridge.host=10.0.0.5            host{10.0.0.5}     127.0.0.1
  port        -Gcoppelia_bridge.port=9000                port{9000}         8888
  transport   -Gcoppelia_bridge.transport=tcp            transport{tcp}     udp
  echo        (per dummy only)                           echo{1}            0
  legacy      (per dummy only)                           legacy{1}          0
  dummy id    (per dummy only)                           id{7}              from the alias
The extension string is the object's "extension string" property (Object properties dialog,
or `<extensionString>` in a simple XML scene), e.g. `id{3} port{9000} echo{1}`. Named
parameters apply to every script of the process, so one command line can redirect a whole
scene without editing it. "Embedded": a first line `COPPELIA_BRIDGE_CONFIG = 'id{3} port{9000}'`
in this script's text, in the same key{value} form; `coppelia-bridge scene --build-remote` writes
it there, since no CoppeliaSim version can set an extension string through the remote API.

Dummy id: `id{N}` if given; otherwise the LAST run of digits in the alias (`Dummy3` -> 3,
`Robot2_arm10` -> 10); an alias without digits gets a stable 32-bit FNV-1a hash of the alias
(same alias -> same id on every run; logged once, set `id{N}` to choose). Copies of a dummy that
share an alias therefore share an id: give them distinct aliases or `id{N}`.

Modes:
  v1 (default)  HELLO in sysCall_init, one STAMP per sysCall_sensing, BYE in sysCall_cleanup.
  echo{1}       the bridge answers each STAMP with an ECHO; the round trip, measured with this
                machine's own clock (socket.gettime() - echoed sent_unix_s), rides in the next
                STAMP's rtt_us. Echoes are read once per pass (never blocking), so rtt_us is
                an upper bound: it includes the wait until the next pass's poll. Each pass
                also sends one CLOCK with the four timestamps of the best exchange read (the
                smallest delay) for the bridge's clock offset estimate; the once-per-pass read
                widens its bound.
  transport{tcp} the same messages framed as <u32 length LE><payload>; non-blocking connect;
                reconnects at most once per wall second if the bridge goes away, and sends
                HELLO again after each reconnect.
  legacy{1}     the classroom notebook's format, UDP only: tostring(id) once, then one
                little-endian float64 simulation time per sensing callback.

Threads: on CoppeliaSim >= 4.6 (sim.intparam_program_version >= 40600) the script is a threaded
child script (it defines sysCall_thread) that polls the socket once per pass and yields with
sim.step(). On 4.3-4.5 there is no sysCall_thread, so sysCall_init creates its own coroutine,
resumed from sysCall_actuation (the pattern CoppeliaSim's own 4.x examples use). If a 4.6+
simulator never resumes sysCall_thread before the first sensing, the script switches to the
self-made coroutine as well. Nothing here ever blocks: every socket has a zero timeout.

Errors: a socket error never raises (a script error would kill the script and pause the
simulation). Each kind of error is logged the first time and then at most every 10 s with a
count, via sim.addLog; the failed send is counted (BYE.send_errors) and sending goes on next
pass.
]]

-- 4.6+: `require('sim')` returns the API table and scripts should use it. In 4.3-4.5 it is the
-- global `sim` already and require would return `true` (coppeliasim-notes §2): keep the global
-- unless require gives a table.
do
    local ok, mod = pcall(require, 'sim')
    if ok and type(mod) == 'table' then
        sim = mod
    end
end

local SCRIPT_VERSION = 1
local DEFAULT_HOST = '127.0.0.1'
local DEFAULT_PORT = 8888
local U32_MAX = 0xFFFFFFFF
local NO_RTT = 0xFFFFFFFF
local NO_SEQ = 0xFFFFFFFF
local MAX_NAME_LEN = 64
local THREADS_SINCE = 40600 -- first version with sysCall_thread (4.6.0)
local RECONNECT_INTERVAL_S = 1.0 -- at most one TCP connect attempt per wall second
local CONNECT_TIMEOUT_S = 3.0 -- give up a TCP connect that sent nothing for this long
local MAX_PENDING_BYTES = 64 * 1024 -- TCP backlog kept while the bridge is slow
local MAX_READS_PER_PASS = 64 -- bound on datagrams/chunks read per pass
local LOG_REPEAT_S = 10.0

local FLAG_ECHO, FLAG_TCP, FLAG_THREAD, FLAG_COROUTINE, FLAG_STEPPING = 1, 2, 4, 8, 16
local KIND_HELLO, KIND_STAMP, KIND_BYE, KIND_ECHO, KIND_CLOCK = 1, 2, 3, 4, 5
local ECHO_LEN = 36

local socket -- LuaSocket module, loaded in sysCall_init
local st -- all state of this script instance; nil until sysCall_init ran

---------------------------------------------------------------------------------------------
-- Logging: once per kind, then at most every LOG_REPEAT_S with the number of repeats.

local function now_s()
    return socket and socket.gettime() or 0
end

local log_name = '?' -- the dummy's alias once known

local function emit_log(msg)
    local text = 'coppelia_bridge[' .. log_name .. ']: ' .. msg
    -- sim.verbosity_scriptwarnings is 430 in CoppeliaSim; guard for versions lacking it.
    local verbosity = sim and sim.verbosity_scriptwarnings or 430
    local ok = sim and sim.addLog and pcall(sim.addLog, verbosity, text)
    if not ok then
        print(text)
    end
end

local logged = {}

local function warn(kind, msg)
    local now = now_s()
    local entry = logged[kind]
    if entry == nil then
        logged[kind] = { at = now, suppressed = 0 }
        emit_log(msg)
    elseif now - entry.at >= LOG_REPEAT_S then
        local extra = entry.suppressed > 0 and (' (' .. entry.suppressed .. ' more since last report)') or ''
        entry.at, entry.suppressed = now, 0
        emit_log(msg .. extra)
    else
        entry.suppressed = entry.suppressed + 1
    end
end

---------------------------------------------------------------------------------------------
-- Configuration

local function call_sim(name, ...)
    local f = sim and sim[name]
    if type(f) ~= 'function' then
        return nil
    end
    local ok, res = pcall(f, ...)
    if ok then
        return res
    end
    return nil
end

local function nonempty(s)
    if type(s) == 'string' and s ~= '' then
        return s
    end
    return nil
end

-- The object this script measures: '.' (legacy child script, or a 4.7+ script object whose
-- "parent is proxy" option is on), else the parent of a 4.7+ script object. Returns the handle
-- and whether it is the parent.
local function measured_handle()
    local h = call_sim('getObject', '.')
    if h == nil and sim and sim.handle_self then
        h = call_sim('getObjectHandle', sim.handle_self) -- pre-4.3 spelling
    end
    local script_type = sim and (sim.sceneobject_script or sim.object_script_type)
    if h and script_type and call_sim('getObjectType', h) == script_type then
        local parent = call_sim('getObject', '..')
        if parent and parent >= 0 then
            return parent, true
        end
    end
    return h, false
end

-- key{value} of the text embedded by `scene --build-remote` (COPPELIA_BRIDGE_CONFIG), read as
-- CoppeliaSim reads an extension string: keys and values trimmed of spaces, braces nested,
-- first occurrence wins, empty means absent.
local function embedded_value(key)
    local text = COPPELIA_BRIDGE_CONFIG -- a global, set by the text's first line if at all
    if type(text) ~= 'string' then
        return nil
    end
    local pos = 1
    while true do
        local open = text:find('{', pos, true)
        if not open then
            return nil
        end
        local depth, close = 0, nil
        for i = open, #text do
            local c = text:sub(i, i)
            if c == '{' then
                depth = depth + 1
            elseif c == '}' then
                depth = depth - 1
                if depth == 0 then
                    close = i
                    break
                end
            end
        end
        if not close then
            return nil
        end
        local k = text:sub(pos, open - 1):match('^ *(.-) *$')
        if k == key then
            return nonempty(text:sub(open + 1, close - 1):match('^ *(.-) *$'))
        end
        pos = close + 1
    end
end

local function fnv1a32(s)
    local h = 0x811C9DC5
    for i = 1, #s do
        h = ((h ~ s:byte(i)) * 0x01000193) & U32_MAX
    end
    return h
end

-- Returns the dummy id and how it was chosen.
local function id_from_alias(alias)
    local digits = nil
    for run in alias:gmatch('%d+') do
        digits = run
    end
    local n = digits and tonumber(digits)
    if n and n <= U32_MAX and math.type(n) == 'integer' then
        return n, 'alias'
    end
    return fnv1a32(alias), 'hash'
end

local function parse_port(s)
    local n = tonumber(s)
    if n and math.type(n) == 'integer' and n >= 1 and n <= 65535 then
        return n
    end
    return nil
end

local function parse_flag(s)
    if s == '1' or s == 'true' or s == 'yes' or s == 'on' then
        return true
    elseif s == '0' or s == 'false' or s == 'no' or s == 'off' then
        return false
    end
    return nil
end

-- One setting: named parameter (if `named`) > extension string > embedded > default.
local function setting(h, key, named)
    local v = named and nonempty(call_sim('getNamedStringParam', 'coppelia_bridge.' .. key))
    if v then
        return v, '-Gcoppelia_bridge.' .. key
    end
    v = h and nonempty(call_sim('getExtensionString', h, -1, key))
    if v then
        return v, 'extension string ' .. key .. '{}'
    end
    v = embedded_value(key)
    if v then
        return v, 'COPPELIA_BRIDGE_CONFIG ' .. key .. '{}'
    end
    return nil, nil
end

local function parsed_setting(h, key, named, parse, default)
    local raw, origin = setting(h, key, named)
    if raw == nil then
        return default
    end
    local v = parse(raw)
    if v == nil then
        warn('config_' .. key, 'ignoring ' .. origin .. ' = "' .. raw .. '" (invalid ' .. key
            .. '); using ' .. tostring(default))
        return default
    end
    return v
end

local function parse_transport(s)
    s = s:lower()
    if s == 'udp' or s == 'tcp' then
        return s
    end
    return nil
end

local function parse_id(s)
    local n = tonumber(s)
    if n and math.type(n) == 'integer' and n >= 0 and n <= U32_MAX then
        return n
    end
    return nil
end

local function read_config()
    local h, via_parent = measured_handle()
    local alias = (h and (call_sim('getObjectAlias', h) or call_sim('getObjectName', h))) or 'dummy'
    local cfg = { alias = alias:sub(1, MAX_NAME_LEN), via_parent = via_parent }
    log_name = cfg.alias
    cfg.host = nonempty((setting(h, 'host', true))) or DEFAULT_HOST
    cfg.port = parsed_setting(h, 'port', true, parse_port, DEFAULT_PORT)
    cfg.transport = parsed_setting(h, 'transport', true, parse_transport, 'udp')
    cfg.echo = parsed_setting(h, 'echo', false, parse_flag, false)
    cfg.legacy = parsed_setting(h, 'legacy', false, parse_flag, false)
    local id_from = 'id{}'
    cfg.id = parsed_setting(h, 'id', false, parse_id, nil)
    if cfg.id == nil then
        cfg.id, id_from = id_from_alias(alias)
    end
    cfg.id_from = id_from
    return cfg
end

---------------------------------------------------------------------------------------------
-- Messages (docs/PROTOCOL.md, v1)

local function u32(n)
    return n & U32_MAX
end

local function hello_msg()
    return string.pack('<c2BBI4dI2I2s1', 'CB', 1, KIND_HELLO, st.id, st.dt, SCRIPT_VERSION,
        st.flags, st.name)
end

local function stamp_msg(seq, step, t, sent)
    return string.pack('<c2BBI4I4I4ddI4', 'CB', 1, KIND_STAMP, st.id, u32(seq), u32(step), t, sent,
        st.rtt_us)
end

local function bye_msg()
    local last = st.seq > 0 and u32(st.seq - 1) or NO_SEQ
    return string.pack('<c2BBI4I4I4I4I4', 'CB', 1, KIND_BYE, st.id, last, u32(st.stamps_sent),
        u32(st.send_errors), u32(st.echoes))
end

-- The four timestamps of one ECHO exchange (NTP's t1..t4) for the bridge's clock offset
-- estimate: seq, our send time, the bridge's receive and send times, our read time.
local function clock_msg(c)
    return string.pack('<c2BBI4I4dddd', 'CB', 1, KIND_CLOCK, st.id, c.seq, c.sent, c.brecv,
        c.bsend, c.read)
end

-- Handles one ECHO payload: RTT measured with our own clock only. Of the exchanges read
-- between two passes, the one with the smallest delay (round trip less the bridge's
-- turnaround) is kept for the next CLOCK: it bounds the clock offset most tightly.
local function on_echo(payload)
    if #payload ~= ECHO_LEN then
        return
    end
    local magic, ver, kind, id, seq, sent, brecv, bsend = string.unpack('<c2BBI4I4ddd', payload)
    if magic ~= 'CB' or ver ~= 1 or kind ~= KIND_ECHO or id ~= st.id then
        return
    end
    local now = socket.gettime()
    local rtt = now - sent
    if rtt == rtt and rtt >= 0 and rtt < 4000 then -- rejects NaN and nonsense
        st.rtt_us = math.min(math.floor(rtt * 1e6 + 0.5), NO_RTT - 1)
        st.echoes = st.echoes + 1
        local delay = rtt - (bsend - brecv)
        if not st.clock or delay < st.clock.delay then
            st.clock = { seq = seq, sent = sent, brecv = brecv, bsend = bsend, read = now,
                delay = delay }
        end
    end
end

---------------------------------------------------------------------------------------------
-- UDP transport: one connected socket, so only the bridge's replies are read and ICMP errors
-- (bridge not listening) surface as send errors instead of vanishing.

local udp = {}

-- Opens the socket; at most once per wall second, since a host name costs a (blocking) DNS
-- lookup in setpeername: give an IP address where possible.
function udp.open()
    local now = socket.gettime()
    if st.last_attempt and now - st.last_attempt < RECONNECT_INTERVAL_S then
        return false
    end
    st.last_attempt = now
    local ok, s, err = pcall(socket.udp)
    if not ok or not s then
        warn('udp_create', 'cannot create UDP socket: ' .. tostring(err or s) .. ' (retrying)')
        return false
    end
    s:settimeout(0)
    local ok2, res, err2 = pcall(s.setpeername, s, st.host, st.port)
    if not ok2 or not res then
        warn('udp_peer', 'cannot set UDP peer ' .. st.host .. ':' .. st.port .. ': '
            .. tostring(err2 or res) .. ' (check host{}/port{}; retrying)')
        pcall(s.close, s)
        return false
    end
    st.sock = s
    return true
end

-- Sends one datagram; true on success.
function udp.send(data)
    if not st.sock and not udp.open() then
        return false
    end
    local ok, res, err = pcall(st.sock.send, st.sock, data)
    if ok and res then
        return true
    end
    warn('udp_send', 'UDP send to ' .. st.host .. ':' .. st.port .. ' failed: '
        .. tostring(ok and err or res) .. ' (is coppelia-bridge running? retrying every pass)')
    return false
end

-- Reads ECHOs (echo mode only: otherwise there is nothing to read, and reading would swallow
-- the 'connection refused' that tells the send path the bridge is gone).
function udp.poll()
    if not st.sock or not st.echo then
        return
    end
    for _ = 1, MAX_READS_PER_PASS do
        local ok, data, err = pcall(st.sock.receive, st.sock)
        if not ok or not data then
            if not ok or err ~= 'timeout' then
                -- e.g. 'connection refused' after an ICMP port unreachable: the bridge is gone.
                st.failing = true
                warn('udp_recv', 'UDP receive from ' .. st.host .. ':' .. st.port .. ' failed: '
                    .. tostring(ok and err or data) .. ' (is coppelia-bridge running?)')
            end
            return
        end
        on_echo(data)
    end
end

function udp.close()
    if st.sock then
        pcall(st.sock.close, st.sock)
        st.sock = nil
    end
end

---------------------------------------------------------------------------------------------
-- TCP transport: frames <u32 length LE><payload>; non-blocking connect; unsent bytes kept in
-- st.pending and pushed again on the next pass (LuaSocket's send returns nil, err, lastIndex).

local tcp = {}

local function frame(payload)
    return string.pack('<s4', payload)
end

function tcp.drop(reason)
    if st.sock then
        pcall(st.sock.close, st.sock)
    end
    local was_up = st.confirmed
    st.sock, st.pending, st.inbox, st.confirmed = nil, '', '', false
    if reason and was_up then
        warn('tcp_lost_' .. reason, 'TCP connection to ' .. st.host .. ':' .. st.port .. ' lost ('
            .. reason .. '); reconnecting at most once per second')
    elseif reason then
        warn('tcp_connect_' .. reason, 'cannot connect to coppelia-bridge at tcp ' .. st.host .. ':'
            .. st.port .. ' (' .. reason .. '): is `coppelia-bridge run` listening on TCP? '
            .. 'retrying once per second')
    end
end

function tcp.connect()
    local now = socket.gettime()
    if st.last_attempt and now - st.last_attempt < RECONNECT_INTERVAL_S then
        return
    end
    st.last_attempt = now
    local ok, s, err = pcall(socket.tcp)
    if not ok or not s then
        warn('tcp_create', 'cannot create TCP socket: ' .. tostring(err or s))
        return
    end
    s:settimeout(0)
    local ok2, res, err2 = pcall(s.connect, s, st.host, st.port)
    if ok2 and (res or err2 == 'timeout' or tostring(err2):find('progress')) then
        -- Connected, or connecting: HELLO goes first, queued until the connection completes.
        st.sock, st.inbox, st.confirmed = s, '', false
        st.pending = frame(hello_msg())
        return
    end
    pcall(s.close, s)
    warn('tcp_connect_' .. tostring(ok2 and err2 or res), 'cannot connect to coppelia-bridge at tcp '
        .. st.host .. ':' .. st.port .. ' (' .. tostring(ok2 and err2 or res)
        .. '): is `coppelia-bridge run` listening on TCP? retrying once per second')
end

-- Pushes st.pending; returns false if the connection had to be dropped.
function tcp.flush()
    if st.pending == '' then
        return true
    end
    local ok, last, err, partial = pcall(st.sock.send, st.sock, st.pending)
    if ok and last then
        st.pending, st.confirmed = st.pending:sub(last + 1), true
        return true
    end
    if ok and err == 'timeout' then
        -- Kernel buffer full or connect still in progress: keep the unsent tail.
        partial = partial or 0
        if partial > 0 then
            st.confirmed = true
        end
        st.pending = st.pending:sub(partial + 1)
        return true
    end
    tcp.drop(tostring(ok and err or last))
    return false
end

-- Queues one message; true if it was handed to the connection (possibly still pending).
function tcp.send(data)
    if not st.sock then
        tcp.connect()
        if not st.sock then
            return false
        end
    end
    local framed = frame(data)
    if #st.pending + #framed > MAX_PENDING_BYTES then
        warn('tcp_backlog', 'TCP backlog full (' .. #st.pending .. ' bytes unsent): dropping messages')
        return false
    end
    st.pending = st.pending .. framed
    return tcp.flush()
end

-- Queues one message behind st.pending without sending: it leaves with the next send, in
-- the same segment. (Two small writes per pass would let Nagle's algorithm hold the second
-- until the bridge acknowledges the first: a delayed ACK, up to 40 ms on Linux.)
function tcp.queue(data)
    local framed = frame(data)
    if not st.sock or #st.pending + #framed > MAX_PENDING_BYTES then
        return false
    end
    st.pending = st.pending .. framed
    return true
end

function tcp.read()
    for _ = 1, MAX_READS_PER_PASS do
        local ok, data, err, partial = pcall(st.sock.receive, st.sock, 4096)
        if not ok then
            tcp.drop('receive error: ' .. tostring(data))
            return
        end
        local got = data or partial or ''
        st.inbox = st.inbox .. got
        if not data then
            if err ~= 'timeout' then
                tcp.drop(tostring(err))
            end
            return
        end
    end
end

function tcp.take_frames()
    while #st.inbox >= 4 do
        local len = string.unpack('<I4', st.inbox)
        if len == 0 or len > 4096 then
            tcp.drop('bad frame length ' .. len)
            return
        end
        if #st.inbox < 4 + len then
            return
        end
        on_echo(st.inbox:sub(5, 4 + len))
        st.inbox = st.inbox:sub(5 + len)
    end
end

function tcp.poll()
    if not st.sock then
        tcp.connect()
        return
    end
    if not tcp.flush() then
        return
    end
    if not st.confirmed then
        if socket.gettime() - st.last_attempt > CONNECT_TIMEOUT_S then
            tcp.drop('connect timed out')
        end
        return
    end
    tcp.read()
    if st.sock then
        tcp.take_frames()
    end
end

function tcp.close()
    if st.sock and tcp.flush() and st.sock then -- one last non-blocking try (BYE); never wait
        -- Read what the bridge sent: closing with unread data makes the kernel send RST.
        tcp.read()
    end
    tcp.drop(nil)
end

---------------------------------------------------------------------------------------------
-- Sending

local function transport()
    return st.transport == 'tcp' and tcp or udp
end

-- After a failed UDP send, the bridge may have restarted and forgotten us: announce again.
local function announce_udp_if_recovering()
    if not st.failing or st.transport ~= 'udp' then
        return
    end
    local hello = st.legacy and tostring(st.id) or hello_msg()
    if udp.send(hello) then
        st.failing = false
    end
end

local function send(data)
    local ok = transport().send(data)
    st.failing = not ok
    return ok
end

-- One pass of socket housekeeping; never blocks.
local function service()
    if not st or st.closed then
        return
    end
    local ok, err = pcall(transport().poll)
    if not ok then
        warn('poll', 'socket poll failed: ' .. tostring(err))
    end
end

local function coroutine_body()
    while true do
        service()
        coroutine.yield()
    end
end

---------------------------------------------------------------------------------------------
-- Thread mode selection: sysCall_thread exists from 4.6 (coppeliasim-notes §2).

local function program_version()
    local key = sim and sim.intparam_program_version
    return key and call_sim('getInt32Param', key) or nil
end

local function start_fallback_coroutine()
    st.mode = 'coroutine'
    st.co = coroutine.create(coroutine_body)
end

local function choose_thread_mode()
    local version = program_version()
    if version and version >= THREADS_SINCE then
        st.mode = 'thread'
        -- Stepping: the thread runs exactly once per pass and is never pre-empted mid-poll.
        if type(sim.setStepping) == 'function' and pcall(sim.setStepping, true) then
            st.flags = st.flags | FLAG_STEPPING
        end
        st.flags = st.flags | FLAG_THREAD
    else
        start_fallback_coroutine()
        st.flags = st.flags | FLAG_COROUTINE
    end
end

---------------------------------------------------------------------------------------------
-- Callbacks

local function init_state()
    local cfg = read_config()
    st = {
        name = cfg.alias, id = cfg.id, host = cfg.host, port = cfg.port,
        transport = cfg.transport, echo = cfg.echo and not cfg.legacy, legacy = cfg.legacy,
        dt = call_sim('getSimulationTimeStep'),
        flags = 0, seq = 0, stamps_sent = 0, send_errors = 0, echoes = 0, rtt_us = NO_RTT,
        pending = '', inbox = '', failing = false, thread_ran = false, passes = 0,
    }
    if type(st.dt) ~= 'number' or not (st.dt > 0 and st.dt < math.huge) then
        st.dt = 0.05 -- CoppeliaSim's default; the HELLO tells the bridge what we assume
    end
    if cfg.id_from == 'hash' then
        warn('id_hash', 'alias "' .. cfg.alias .. '" has no digits: using id ' .. cfg.id
            .. ' (hash of the alias); set id{N} in the extension string to choose')
    end
    if st.legacy and st.transport == 'tcp' then
        warn('legacy_tcp', 'legacy{1} is UDP only (notebook format): ignoring transport{tcp}')
        st.transport = 'udp'
    end
    if st.echo then st.flags = st.flags | FLAG_ECHO end
    if st.transport == 'tcp' then st.flags = st.flags | FLAG_TCP end
end

local function say_hello()
    if st.legacy then
        st.failing = not udp.send(tostring(st.id)) -- notebook: the ASCII id, once
    elseif st.transport == 'tcp' then
        tcp.connect() -- HELLO is queued first on every (re)connection
    else
        st.failing = not udp.send(hello_msg())
    end
end

function sysCall_init()
    local ok, mod = pcall(require, 'socket')
    if not ok or type(mod) ~= 'table' then
        emit_log('LuaSocket (require "socket") is not available: this dummy sends nothing ('
            .. tostring(mod) .. ')')
        return
    end
    socket = mod
    init_state()
    choose_thread_mode()
    local ok2, err = pcall(say_hello)
    if not ok2 then
        warn('hello', 'sending HELLO failed: ' .. tostring(err))
    end
end

function sysCall_thread()
    if not st or st.mode ~= 'thread' then
        return -- 4.3-4.5 path (or no socket): the self-made coroutine does the work
    end
    while not st.closed do
        st.thread_ran = true
        service()
        if type(sim.step) == 'function' then
            sim.step() -- resume in the next pass
        else
            sim.switchThread() -- older spelling of the same yield
        end
    end
end

function sysCall_actuation()
    if not st or not st.co then
        return
    end
    local ok, err = coroutine.resume(st.co)
    if not ok then
        warn('coroutine', 'polling coroutine died: ' .. tostring(err) .. ' (polling inline)')
        st.co = nil
        st.mode = 'inline'
    end
end

-- Pass index k from t = k*dt (rounded: t accumulates float error); 0 if dt or t is unusable.
local function step_index(t)
    local k = t / st.dt + 0.5
    if k ~= k or k < 0 or k >= 2 ^ 32 then
        return 0
    end
    return math.floor(k)
end

local function send_stamp()
    local t = call_sim('getSimulationTime') or 0
    local seq = st.seq
    st.seq = seq + 1 -- seq counts attempts (docs/PROTOCOL.md, STAMP)
    local data
    if st.legacy then
        data = string.pack('<d', t)
    else
        data = stamp_msg(seq, step_index(t), t, socket.gettime()) -- wall clock just before sending
    end
    if send(data) then
        st.stamps_sent = st.stamps_sent + 1
    else
        st.send_errors = st.send_errors + 1
    end
end

-- The best ECHO exchange read since the last pass, if any (echo mode), as one CLOCK: not
-- counted as a STAMP, and a failed send is not retried (the next exchange will do). Over
-- TCP it is queued and leaves with the STAMP in one write.
local function send_clock()
    local c = st.clock
    if c then
        st.clock = nil
        if st.transport == 'tcp' then
            tcp.queue(clock_msg(c))
        else
            udp.send(clock_msg(c))
        end
    end
end

-- A 4.6+ simulator that never resumed sysCall_thread: fall back to the self-made coroutine.
local function check_thread_alive()
    if st.mode == 'thread' and not st.thread_ran then
        warn('no_thread', 'sysCall_thread was not resumed: polling from sysCall_actuation instead')
        start_fallback_coroutine()
    end
end

function sysCall_sensing()
    if not st then
        return
    end
    if st.passes == 0 then
        check_thread_alive()
    end
    st.passes = st.passes + 1
    if st.mode == 'inline' then
        service()
    end
    local ok, err = pcall(function()
        announce_udp_if_recovering()
        send_clock()
        send_stamp()
    end)
    if not ok then
        warn('stamp', 'sending STAMP failed: ' .. tostring(err))
    end
end

function sysCall_cleanup()
    if not st then
        return
    end
    if not st.legacy then
        pcall(send, bye_msg())
    end
    pcall(transport().close)
    st.closed = true
end
