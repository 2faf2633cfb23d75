-- health-endpoint.lua: an HTTP health endpoint written in Lua, next to a passthrough
-- proxy. GET /health asks the backend's port (a core.tcp() connect, which waits without
-- blocking anyone) and answers 200 "up" or 503 "down"; anything else is 404.
--
--   DPM_LISTEN_HOST/PORT (the MySQL proxy, default 127.0.0.1:5500),
--   DPM_BACKEND_HOST/PORT (default 127.0.0.1:3306), DPM_HEALTH_PORT (default 8404)
--   dpm --startfile examples/health-endpoint.lua
--   curl -i http://127.0.0.1:8404/health

-- The proxy itself: examples/passthrough.lua, next to this file.
dofile((dpm.startfile:gsub("[^/]*$", "")) .. "passthrough.lua")

local backend_host = os.getenv("DPM_BACKEND_HOST") or "127.0.0.1"
local backend_port = tonumber(os.getenv("DPM_BACKEND_PORT") or "3306")
local health_port = tonumber(os.getenv("DPM_HEALTH_PORT") or "8404")

local function answer(res, status, body)
    res:send(("HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s")
        :format(status, #body, body))
end

local health = assert(dpm.listener("127.0.0.1", health_port, { mode = "tcp" }))
health:register_action(function(txn)
    local req, res = txn:req_channel(), txn:res_channel()
    local request = req:get_line()           -- "GET /health HTTP/1.1\r\n", or nil
    if not request then return end
    repeat                                   -- skip the headers, up to the blank line
        local header = req:get_line()
    until header == nil or header == "\r\n" or header == "\n"
    local method, path = request:match("^(%u+) (%S+)")
    if method ~= "GET" or path ~= "/health" then
        return answer(res, "404 Not Found", "try GET /health\n")
    end
    local s = core.tcp()
    s:settimeout(1)
    local ok, err = s:connect(backend_host, backend_port)
    s:close()
    if ok then
        answer(res, "200 OK", "up\n")
    else
        answer(res, "503 Service Unavailable", "down: " .. err .. "\n")
    end
end)
