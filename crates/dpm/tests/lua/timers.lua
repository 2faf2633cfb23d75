-- Timers: ticking, cancelling inside the callback, rescheduling with an argument,
-- a failing callback, and a packet wired from a timer (SELECT 'later' is held 100 ms).
local common = require "common"
local ticks = 0
local t = dpm.new_timer()
t:schedule(0, 50, function(timer)
    ticks = ticks + 1
    print("tick " .. ticks)
    if ticks == 3 then
        timer:cancel()
        timer:cancel() -- idempotent
        timer:schedule(0, 50, function(again, arg)
            print("rescheduled got " .. arg)
            again:cancel()
        end, "hello")
    end
end, nil)
local bad = dpm.new_timer()
bad:schedule(0, 30, function() error("timer went wrong") end, nil)

common.passthrough(tonumber(os.getenv("DPM_LISTEN_PORT")), function(client, backend)
    client:register(dpm.MYC_SENT_CMD, function(cmd)
        if cmd:argument() == "SELECT 'later'" then
            local hold = dpm.new_timer()
            hold:schedule(0, 100, function(timer)
                timer:cancel()
                dpm.wire_packet(backend, cmd)
                print("wired later")
            end, nil)
            return dpm.DPM_NOPROXY
        end
    end)
end)
