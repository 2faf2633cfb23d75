-- Passthrough where the query SELECT 'slow' sleeps 300 ms in its callback first.
local common = require "common"
common.passthrough(tonumber(os.getenv("DPM_LISTEN_PORT")), function(client)
    client:register(dpm.MYC_SENT_CMD, function(cmd)
        if cmd:argument() == "SELECT 'slow'" then
            core.msleep(300)
            print("slow query released")
        end
    end)
end)
