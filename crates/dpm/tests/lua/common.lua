-- Shared by the test startfiles: a passthrough listener whose clients can get extra
-- callbacks. require "common" works because the startfile's folder is on package.path.
local M = { conns = {} }
local conns = M.conns

local function on_closing(id)
    local conn = conns[id]
    conns[id] = nil
    if conn and conns[conn:remote_id()] then
        dpm.close(conns[conn:remote_id()])
    end
end

-- Listens on `port` and links each client to its own backend; `setup(client, backend)`
-- may register more callbacks; `options` and `backend_options` are dpm.listener's and
-- dpm.connect's (e.g. { tls = … }).
function M.passthrough(port, setup, options, backend_options)
    local listener = assert(dpm.listener("127.0.0.1", port, options))
    conns[listener:id()] = listener
    listener:register(dpm.MYC_CONNECT, function(client)
        local backend = dpm.connect("127.0.0.1", tonumber(os.getenv("DPM_BACKEND_PORT")), backend_options)
        conns[client:id()], conns[backend:id()] = client, backend
        client:register(dpm.MY_CLOSING, on_closing)
        backend:register(dpm.MY_CLOSING, on_closing)
        if setup then setup(client, backend) end
        dpm.proxy_connect(client, backend)
    end)
    return listener
end

-- A listener that prints dpm.stats() on each connect and closes the client.
function M.stats_listener(port)
    local listener = assert(dpm.listener("127.0.0.1", port))
    conns[listener:id()] = listener
    listener:register(dpm.MYC_CONNECT, function(client)
        local s = dpm.stats()
        print(string.format("stats lua_calls=%d packets_decoded=%d pipeline_runs=%d",
            s.lua_calls, s.packets_decoded, s.pipeline_runs))
        dpm.close(client)
    end)
end

-- A value as JSON-ish text (keys sorted; strings not escaped): for diagnostics in rows.
function M.encode(v)
    if type(v) == "table" then
        local parts, is_list = {}, #v > 0
        for k, x in pairs(v) do
            parts[#parts + 1] = is_list and M.encode(x) or ('"' .. k .. '":' .. M.encode(x))
        end
        table.sort(parts)
        return is_list and ("[" .. table.concat(parts, ",") .. "]") or ("{" .. table.concat(parts, ",") .. "}")
    elseif type(v) == "string" then
        return '"' .. v .. '"'
    end
    return tostring(v)
end

return M
