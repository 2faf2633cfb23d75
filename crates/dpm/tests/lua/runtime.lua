-- Listeners opened and closed from inside callbacks, and a listener whose clients are
-- not kept referenced (the garbage collector closes them).
local common = require "common"
local extra
common.passthrough(tonumber(os.getenv("DPM_LISTEN_PORT")), function(client)
    client:register(dpm.MYC_SENT_CMD, function(cmd)
        local sql = cmd:argument()
        if sql == "SELECT 'open'" then
            extra = common.passthrough(tonumber(os.getenv("DPM_EXTRA_PORT")))
            print("extra listener opened")
        elseif sql == "SELECT 'close'" then
            print("extra listener closed: " .. tostring(dpm.close(extra)))
            print("closing again: " .. tostring(dpm.close(extra)))
        end
    end)
end)
local forgetful = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_GC_PORT"))))
common.conns[forgetful:id()] = forgetful
forgetful:register(dpm.MYC_CONNECT, function(client)
    print("forgetting client " .. client:id())
    client:register(dpm.MY_CLOSING, function(id) print("collected client " .. id) end)
end)
local gc = dpm.new_timer()
gc:schedule(0, 50, function() collectgarbage("collect") end, nil)
