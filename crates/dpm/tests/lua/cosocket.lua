-- core.tcp() cosockets (crates/dpm/tests/it/lua_runtime.rs): passthrough where
--   SELECT 'ask'      asks the HTTP service on DPM_HTTP_PORT before running, and runs
--                     SELECT '<its answer>' instead;
--   SELECT 'refused'  connects to the closed port DPM_CLOSED_PORT and runs
--                     SELECT '<the error>' instead;
--   SELECT 'patterns' checks receive's patterns, partial results and timeouts against
--                     the echo-and-close service on DPM_ECHO_PORT;
--   SELECT 'tls'      asks the TLS web server on DPM_TLS_PORT (openssl s_server) with
--                     connect_ssl, verified against DPM_TLS_CA, then against DPM_OTHER_CA;
-- and a task (once per process) health-checks DPM_HEALTH_PORT every 100 ms, printing
-- each change.

local http_port = tonumber(os.getenv("DPM_HTTP_PORT"))
local closed_port = tonumber(os.getenv("DPM_CLOSED_PORT"))
local echo_port = tonumber(os.getenv("DPM_ECHO_PORT"))
local health_port = tonumber(os.getenv("DPM_HEALTH_PORT"))
local tls_port = tonumber(os.getenv("DPM_TLS_PORT"))

local function tls_status(ca)
    local s = core.tcp()
    s:settimeout(5)
    local ok, err = s:connect_ssl("127.0.0.1", tls_port, { ca = ca, server_name = "localhost" })
    if not ok then return "nil " .. err end
    s:send("GET / HTTP/1.0\r\n\r\n")
    local status = s:receive("*l")
    s:close()
    return status
end

-- One GET over HTTP/1.0: the body, or nil and why.
local function http_get(path)
    local s = core.tcp()
    s:settimeout(2)
    local ok, err = s:connect("127.0.0.1", http_port)
    if not ok then return nil, err end
    local request = "GET " .. path .. " HTTP/1.0\r\nHost: localhost\r\n\r\n"
    local last, serr = s:send(request)
    assert(last == #request, serr)
    local status = s:receive("*l")
    assert(status:match("^HTTP/1%.%d 200"), status)
    local length
    while true do
        local line = s:receive()
        if line == "" then break end
        length = tonumber(line:match("^[Cc]ontent%-[Ll]ength: *(%d+)")) or length
    end
    local body = s:receive(length)
    s:close()
    return body
end

local function check_patterns()
    local s = core.tcp()
    s:settimeout(0.2)
    assert(s:connect("127.0.0.1", echo_port))
    local ip, port = s:getpeername()
    assert(ip == "127.0.0.1" and port == echo_port, tostring(ip) .. ":" .. tostring(port))
    assert(select(2, s:getsockname()) > 0)
    assert(s:setoption("tcp-nodelay", true) == 1)
    -- The service echoes what it gets, then waits; nothing more: a timeout with the partial.
    assert(s:send("line one\r\nline two\nabc") == 22)
    assert(s:receive("*l") == "line one")
    assert(s:receive("*l", "> ") == "> line two")
    local none, err, partial = s:receive("*l")
    assert(none == nil and err == "timeout" and partial == "abc", tostring(err) .. " " .. tostring(partial))
    -- "close" makes it close: everything before the close, then "closed" for more.
    assert(s:send("xyzclose") == 8)
    s:settimeout(2)
    local all = s:receive("*a")
    assert(all == "xyzclose", all)
    local n, err2, part2 = s:receive(4)
    assert(n == nil and err2 == "closed" and part2 == "", tostring(err2))
    s:close()
    local again, err3 = s:send("x")
    assert(again == nil and err3 == "closed", tostring(err3))
    return "patterns ok"
end

local function rewrite(cmd, backend)
    if cmd:command() ~= dpm.COM_QUERY then return end
    local q = cmd:argument()
    local answer
    if q == "SELECT 'ask'" then
        answer = assert(http_get("/answer"))
    elseif q == "SELECT 'refused'" then
        local started = core.now()
        local s = core.tcp()
        local ok, err = s:connect("127.0.0.1", closed_port)
        local now = core.now()
        local ms = (now.sec - started.sec) * 1000 + (now.usec - started.usec) / 1000
        answer = tostring(ok) .. " " .. err .. (ms < 100 and " at once" or (" after " .. ms .. " ms"))
    elseif q == "SELECT 'tls'" then
        answer = tls_status(os.getenv("DPM_TLS_CA")) .. " | " .. tls_status(os.getenv("DPM_OTHER_CA"))
    elseif q == "SELECT 'patterns'" then
        local ok, res = pcall(check_patterns)
        answer = ok and res or ("patterns failed: " .. tostring(res))
    else
        return
    end
    cmd:argument("SELECT '" .. answer:gsub("'", "''") .. "'")
    dpm.wire_packet(backend, cmd)
    return dpm.DPM_NOPROXY
end

function passthrough_setup(client, backend)
    client:register(dpm.MYC_SENT_CMD, function(cmd)
        return rewrite(cmd, backend)
    end)
end

core.register_task(function()
    local up
    while true do
        local s = core.tcp()
        s:settimeout(0.5)
        local ok = s:connect("127.0.0.1", health_port)
        s:close()
        if (ok ~= nil) ~= up then
            up = ok ~= nil
            print("health: port " .. health_port .. (up and " up" or " down"))
        end
        core.msleep(100)
    end
end)

dofile((dpm.startfile:gsub("tests/lua/[^/]*$", "")) .. "../../examples/passthrough.lua")
