-- A packet hook that injects 1 ms of latency before every write of the client threads:
-- each query waits 1 ms before it leaves, without holding up the thread's other
-- connections (core.msleep suspends only this connection's coroutine).
--   dpm bench --script examples/bench/latency.lua --workload oltp_point_select ...

local delayed = collect(0)   -- writes delayed, per thread

client_sendmsg(function(fd, msg, flags)
    core.msleep(1)
    delayed = delayed + 1
    return sendmsg(fd, msg, flags)
end)

local report = run()

local n = 0
for _, d in ipairs(delayed) do n = n + d end
print(string.format("%d writes delayed by 1 ms; p50 %.3f ms, min %.3f ms",
    n, report.latency_ms.p50, report.latency_ms.min))
