--[[ harness.lua: runs coppelia_bridge.lua outside CoppeliaSim, under real LuaSocket.

Emulates what a child script sees in CoppeliaSim 4.3-4.10 (coppeliasim-notes §2): one Lua
environment per dummy, a fake `sim` table, and the pass order
  first visit: chunk + sysCall_init (lazily, in the actuation phase), then the sysCall_thread
  coroutine is created (4.6+ only);
  each pass k (t = k*dt): per script, resume the thread, then sysCall_actuation;
                          then every script's sysCall_sensing;
                          last pass: every script's sysCall_cleanup.
A script error is logged as <alias>@childScript, that script's cleanup runs, and it stays dead
for the run (pauseAtError false); the harness then exits with status 3.

Usage: lua5.3 harness.lua --port P [options]
  --script PATH      script to run (default: lua/coppelia_bridge.lua)
  --host H           bridge host (default 127.0.0.1)
  --port P           bridge port (required)
  --dummies N        number of dummies, aliases Dummy0..Dummy{N-1} (default 1)
  --passes N         simulation passes (default 10)
  --dt S             simulation time step, s (default 0.05)
  --pace S           wall-clock sleep after each pass, s (default 0: as fast as possible)
  --tcp | --echo | --legacy   put transport{tcp} / echo{1} / legacy{1} in the extension string
  --named            give host/port as named parameters (-G) instead of the extension string
  --ext TEXT         extra text appended to every dummy's extension string
  --set KEY=VALUE    extra named string parameter (repeatable)
  --alias PREFIX     alias prefix (default Dummy)
  --emulate45        CoppeliaSim 4.5: version 40500, require('sim') returns true, no
                     sim.step/sim.setStepping, sysCall_thread never resumed
  --no-thread-calls  version 40600 but sysCall_thread never resumed (runtime fallback path)
  --alias-exact      use the alias prefix as is, without the index (for one dummy)
  --version N        sim.intparam_program_version (default 40600; --emulate45 makes it 40500)
  --script-object    4.7+: each dummy runs the script as a script object (alias Script) placed
                     under it: sim.getObject('.') is the script object, '..' the dummy
                     (coppeliaSimLib@coppeliasim-v4.7.0-rev2:simInternal.cpp,
                     simGetObject_internal); --version defaults to 40700
  --proxy            with --script-object: its "parent is proxy" option is on, so '.' is the
                     dummy (and '..' the dummy's parent: none, an error)
  --embed TEXT       prepend a line COPPELIA_BRIDGE_CONFIG = TEXT (a Lua string) to the script, as
                     `scene --build-remote` does; the extension string then holds no host/port
  --chop-sends N     the first --chop-count (default 30) TCP sends transmit at most N bytes and
                     report the rest as LuaSocket does for a full buffer: nil, 'timeout', lastIndex
]]

local socket = require('socket')

local function usage(msg)
    io.stderr:write('harness: ' .. msg .. ' (see the header of lua/test/harness.lua)\n')
    os.exit(2)
end

local function parse_args(argv)
    local o = {
        script = 'lua/coppelia_bridge.lua', host = '127.0.0.1', dummies = 1, passes = 10,
        dt = 0.05, pace = 0, ext = '', alias = 'Dummy', named = {}, via_named = false,
        chop_count = 30,
    }
    local flags = { ['--tcp'] = 'tcp', ['--echo'] = 'echo', ['--legacy'] = 'legacy',
        ['--named'] = 'via_named', ['--emulate45'] = 'emulate45',
        ['--no-thread-calls'] = 'no_thread_calls', ['--alias-exact'] = 'alias_exact',
        ['--script-object'] = 'script_object', ['--proxy'] = 'proxy' }
    local values = { ['--script'] = 'script', ['--host'] = 'host', ['--port'] = 'port',
        ['--dummies'] = 'dummies', ['--passes'] = 'passes', ['--dt'] = 'dt', ['--pace'] = 'pace',
        ['--ext'] = 'ext', ['--alias'] = 'alias', ['--chop-sends'] = 'chop',
        ['--chop-count'] = 'chop_count', ['--version'] = 'version', ['--embed'] = 'embed' }
    local numeric = { port = true, dummies = true, passes = true, dt = true, pace = true,
        chop = true, chop_count = true, version = true }
    local i = 1
    while i <= #argv do
        local a = argv[i]
        if flags[a] then
            o[flags[a]] = true
        elseif values[a] or a == '--set' then
            local v = argv[i + 1] or usage(a .. ' needs a value')
            i = i + 1
            if a == '--set' then
                local k, val = v:match('^([^=]+)=(.*)$')
                if not k then usage('--set wants KEY=VALUE, got ' .. v) end
                o.named[k] = val
            else
                local key = values[a]
                o[key] = numeric[key] and (tonumber(v) or usage(a .. ' wants a number')) or v
            end
        else
            usage('unknown argument ' .. a)
        end
        i = i + 1
    end
    if not o.port then usage('--port is required') end
    o.version = math.tointeger(o.version) or (o.emulate45 and 40500)
        or (o.script_object and 40700) or 40600
    if o.script_object and o.version < 40700 then usage('--script-object needs --version >= 40700') end
    return o
end

local opts = parse_args(arg)

---------------------------------------------------------------------------------------------
-- Fake simulator

local clock = { t = 0.0 }
local failures = 0

local function ext_string(d)
    local parts = {}
    if not opts.via_named and not opts.embed then
        parts[#parts + 1] = 'host{' .. opts.host .. '} port{' .. math.tointeger(opts.port) .. '}'
    end
    if opts.tcp then parts[#parts + 1] = 'transport{tcp}' end
    if opts.echo then parts[#parts + 1] = 'echo{1}' end
    if opts.legacy then parts[#parts + 1] = 'legacy{1}' end
    if opts.ext ~= '' then parts[#parts + 1] = opts.ext end
    return table.concat(parts, ' ')
end

if opts.via_named then
    opts.named['coppelia_bridge.host'] = opts.host
    opts.named['coppelia_bridge.port'] = tostring(math.tointeger(opts.port))
end

-- `key{value}` lookup as sim.getExtensionString(h, -1, key) does; nil when absent.
local function ext_lookup(ext, key)
    for k, v in ext:gmatch('([%w_]+)%s*{([^}]*)}') do
        if k == key then return v end
    end
    return nil
end

local function log_line(text)
    io.stderr:write(text .. '\n')
    io.stderr:flush()
end

-- Scene objects of the fake: each dummy d (handle 100+i) and, with --script-object, its script
-- object (handle 200+i, alias 'Script', no extension string).
local function object_of(d, h)
    if h == d.handle then return { alias = d.alias, ext = d.ext, type = 4 } end
    if d.script_handle and h == d.script_handle then return { alias = 'Script', ext = '', type = 17 } end
    error('object does not exist')
end

local function make_sim(d)
    local version = opts.version
    local sim = {
        handle_self = -4, handle_all = -2, handle_world = -1, handle_scene = -12,
        intparam_program_version = 1, intparam_program_revision = 30,
        verbosity_errors = 200, verbosity_warnings = 300, verbosity_infos = 400,
        verbosity_scripterrors = 420, verbosity_scriptwarnings = 430, verbosity_scriptinfos = 450,
    }
    if version >= 40800 then
        sim.sceneobject_script, sim.sceneobject_dummy = 17, 4
    elseif version >= 40700 then
        sim.object_script_type = 17
    end
    sim.object_dummy_type = 4
    -- The emitting object of sim.getObject: the script object, unless parent-is-proxy.
    local emitter = (d.script_handle and not opts.proxy) and d.script_handle or d.handle
    function sim.getObject(path)
        if path == '.' then return emitter end
        if path == '..' and emitter == d.script_handle then return d.handle end
        error('object does not exist or ill-formatted path: ' .. tostring(path))
    end
    function sim.getObjectType(h) return object_of(d, h).type end
    function sim.getObjectAlias(h) return object_of(d, h).alias end
    function sim.getExtensionString(h, index, key)
        if index ~= -1 then error('invalid arguments') end
        return ext_lookup(object_of(d, h).ext, key)
    end
    function sim.getNamedStringParam(key) return opts.named[key] end
    function sim.getSimulationTime() return clock.t end
    function sim.getSimulationTimeStep() return opts.dt end
    function sim.getInt32Param(p)
        if p == 1 then return version end
        error('unsupported int32 param ' .. tostring(p))
    end
    function sim.getSystemTime()
        -- CoppeliaSim's clock is process-relative with 1 ms steps: the script must not use it.
        d.used_system_time = true
        return math.floor(os.clock() * 1000) / 1000
    end
    function sim.addLog(verbosity, text)
        d.logs = d.logs + 1
        log_line('[addLog ' .. verbosity .. '] ' .. text)
    end
    function sim.switchThread() coroutine.yield() end
    if not opts.emulate45 then
        function sim.step() coroutine.yield() end
        function sim.setStepping(on)
            local prev = d.stepping and 1 or 0
            d.stepping = on and true or false
            return prev
        end
    end
    return sim
end

-- LuaSocket with short TCP sends (--chop-sends): exercises the script's partial-send path.
local chopped = 0
local chop_left = opts.chop_count

local function forward(real)
    return setmetatable({}, { __index = function(_, k)
        local v = real[k]
        if type(v) == 'function' then
            return function(_, ...) return v(real, ...) end
        end
        return v
    end })
end

local function chopping_socket(mod)
    local n = math.tointeger(opts.chop)
    local wrapped = setmetatable({}, { __index = mod })
    function wrapped.tcp()
        local real, err = mod.tcp()
        if not real then return real, err end
        local proxy = forward(real)
        function proxy.send(_, data, i, j)
            i, j = i or 1, j or #data
            if chop_left <= 0 or j - i + 1 <= n then
                return real:send(data, i, j)
            end
            chop_left = chop_left - 1
            local last, e, partial = real:send(data, i, i + n - 1)
            if not last then return nil, e, partial end
            chopped = chopped + 1
            return nil, 'timeout', last
        end
        return proxy
    end
    return wrapped
end

local function make_env(d)
    local env = setmetatable({}, { __index = _G })
    env.sim = make_sim(d)
    env.require = function(name)
        if name == 'sim' then
            if opts.emulate45 then return true end -- 4.3-4.5 (notes §2, inferred)
            return env.sim
        end
        if name == 'socket' and opts.chop then
            return chopping_socket(require('socket'))
        end
        return require(name)
    end
    return env
end

---------------------------------------------------------------------------------------------
-- Scripts and the pass loop

local dummies = {}
for i = 0, math.tointeger(opts.dummies) - 1 do
    local alias = opts.alias_exact and opts.alias or (opts.alias .. i)
    local d = { handle = 100 + i, alias = alias, logs = 0,
        script_handle = opts.script_object and (200 + i) or nil }
    d.ext = ext_string(d)
    d.env = make_env(d)
    dummies[#dummies + 1] = d
end

local function script_error(d, where, err)
    failures = failures + 1
    log_line('[error 420] ' .. d.alias .. '@childScript: ' .. where .. ': ' .. tostring(err))
    d.dead = true
    local cleanup = d.env.sysCall_cleanup
    if d.initialised and type(cleanup) == 'function' then
        pcall(cleanup)
    end
end

local function call(d, name)
    local f = d.env[name]
    if d.dead or type(f) ~= 'function' then return end
    local ok, err = xpcall(f, debug.traceback)
    if not ok then script_error(d, name, err) end
end

local function script_text()
    local f = assert(io.open(opts.script, 'rb'))
    local text = f:read('a')
    f:close()
    if opts.embed then
        text = 'COPPELIA_BRIDGE_CONFIG = [[' .. opts.embed .. ']]\n' .. text
    end
    return text
end

local function first_visit(d)
    local chunk, err = load(script_text(), '=' .. d.alias, 't', d.env)
    if not chunk then
        script_error(d, 'load', err)
        return
    end
    local ok, e = xpcall(chunk, debug.traceback)
    if not ok then
        script_error(d, 'chunk', e)
        return
    end
    d.initialised = true
    call(d, 'sysCall_init')
    local thread = d.env.sysCall_thread
    if not d.dead and type(thread) == 'function' and not opts.emulate45
        and not opts.no_thread_calls then
        d.thread = coroutine.create(thread)
    end
end

local function resume_thread(d)
    if d.dead or not d.thread or coroutine.status(d.thread) ~= 'suspended' then return end
    local ok, err = coroutine.resume(d.thread)
    if not ok then script_error(d, 'sysCall_thread', debug.traceback(d.thread, err)) end
end

local function run_pass(k, last)
    clock.t = k * opts.dt
    for _, d in ipairs(dummies) do
        if not d.initialised and not d.dead then first_visit(d) end
        resume_thread(d)
        call(d, 'sysCall_actuation')
    end
    for _, d in ipairs(dummies) do call(d, 'sysCall_sensing') end
    if last then
        for _, d in ipairs(dummies) do call(d, 'sysCall_cleanup') end
    end
end

local passes = math.tointeger(opts.passes)
for k = 0, passes - 1 do
    run_pass(k, k == passes - 1)
    if opts.pace > 0 then socket.sleep(opts.pace) end
end

for _, d in ipairs(dummies) do
    if d.used_system_time then
        failures = failures + 1
        log_line('harness: ' .. d.alias .. ' called sim.getSystemTime (not a wall clock)')
    end
    print(string.format('harness: %s passes=%d logs=%d stepping=%s dead=%s', d.alias, passes,
        d.logs, tostring(d.stepping or false), tostring(d.dead or false)))
end
if opts.chop then
    print('harness: chopped_sends=' .. chopped)
end
os.exit(failures == 0 and 0 or 3)
