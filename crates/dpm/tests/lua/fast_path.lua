-- Passthrough with callbacks only on events a query never reaches (or, with
-- DPM_HOOK_CMD=1, a MYC_SENT_CMD callback reading the SQL), plus a stats port.
local common = require "common"
local hook_cmd = os.getenv("DPM_HOOK_CMD") == "1"
common.passthrough(tonumber(os.getenv("DPM_LISTEN_PORT")), function(client, backend)
    client:register(dpm.MYS_SENDING_EOF, function() print("never") end)
    backend:register(dpm.MYS_SENDING_STATS, function() print("never") end)
    if hook_cmd then
        client:register(dpm.MYC_SENT_CMD, function(cmd) local sql = cmd:argument() end)
    end
end)
common.stats_listener(tonumber(os.getenv("DPM_STATS_PORT")))
