-- "Sent" callbacks run after the packet was queued on its connection. Two listeners:
-- clients of DPM_LISTEN_PORT have a MYC_SENT_CMD callback (the packet is forwarded
-- after a callback); clients of DPM_FAST_PORT have none (the fast path). Any client's
-- statement containing 'arm' arms the next MYS_GOT_CMD, on any backend, to close that
-- backend at once: if the callback ran before the command was queued, the command would
-- be lost; it runs after, so the command still reaches the server (a close flushes).
local common = require "common"
-- armed: the next MYS_GOT_CMD closes its backend, unless that backend is `spared`.
local armed, spared = false, nil

local function on_got_cmd(backend_id)
    if armed and backend_id ~= spared then
        armed, spared = false, nil
        print("closing backend " .. backend_id .. " from MYS_GOT_CMD")
        dpm.close(common.conns[backend_id])
    end
end

common.passthrough(tonumber(os.getenv("DPM_LISTEN_PORT")), function(client, backend)
    client:register(dpm.MYC_SENT_CMD, function(cmd, client_id)
        local sql = cmd:argument() or ""
        if sql:find("'arm'", 1, true) then
            -- arms another session's next command, not this one's
            armed, spared = true, common.conns[client_id]:remote_id()
        elseif sql:find("via-callback", 1, true) then
            armed, spared = true, nil
        end
    end)
    backend:register(dpm.MYS_GOT_CMD, on_got_cmd)
end)

common.passthrough(tonumber(os.getenv("DPM_FAST_PORT")), function(client, backend)
    backend:register(dpm.MYS_GOT_CMD, on_got_cmd)
end)
