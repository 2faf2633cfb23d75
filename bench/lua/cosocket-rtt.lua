-- bench/cosocket: a task (once per process) makes DPM_RTT_N sequential round trips over a
-- core.tcp() socket to the echo server on DPM_ECHO_PORT ("ping\n" out, a line back) and
-- prints the mean in microseconds, as bench/cosocket-rtt's plain tokio client does.
local port = tonumber(os.getenv("DPM_ECHO_PORT"))
local n = tonumber(os.getenv("DPM_RTT_N") or "20000")

core.register_task(function()
    local s = core.tcp()
    assert(s:connect("127.0.0.1", port))
    -- Warm up, as the plain client's first round trips also are.
    for _ = 1, 100 do
        s:send("ping\n")
        assert(s:receive("*l") == "ping")
    end
    local t0 = core.now()
    for _ = 1, n do
        s:send("ping\n")
        s:receive("*l")
    end
    local t1 = core.now()
    local us = ((t1.sec - t0.sec) * 1e6 + (t1.usec - t0.usec)) / n
    print(("rtt_us=%.2f"):format(us))
    s:close()
end)
