-- Test startfile: passthrough whose MYC_SENT_CMD callback raises for one query.
local common = require "common"
local function on_command(cmd, id)
    if cmd:argument() == "SELECT 'boom'" then
        error("kaboom on purpose") -- line 5: the test expects this position in the log
    end
end
common.passthrough(tonumber(os.getenv("DPM_LISTEN_PORT")), function(client)
    client:register(dpm.MYC_SENT_CMD, on_command)
end)
