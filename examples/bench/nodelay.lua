-- A socket hook that turns TCP_NODELAY off (Nagle's algorithm on) on every client
-- socket, to show its effect. dpm bench writes each command with one write, where Nagle
-- changes nothing; many clients write a packet's header and its body separately, and
-- there it matters: the body waits until the server has acknowledged the header, which
-- the server delays (it answers only once the whole command is in; Linux holds such an
-- ACK up to 40 ms). A packet hook plays that client: it writes the 4-byte header alone,
-- then the rest. With NODELAY=on (what the built-in client sets) both writes go at once.
--   NODELAY=off dpm bench --script examples/bench/nodelay.lua --connections 2 ...
--   NODELAY=on  dpm bench --script examples/bench/nodelay.lua --connections 2 ...
-- At close, each connection's TCP_INFO tells its smoothed round-trip time.

local nodelay = os.getenv("NODELAY") == "on"
local rtt = collect({ sum = 0, n = 0 })
local in_body = {}   -- fd -> true while the body of a split write is left

client_socket(function(fd, addr)
    setsockopt(fd, "TCP_NODELAY", nodelay)
end)

client_sendmsg(function(fd, msg, flags)
    if in_body[fd] or #msg <= 4 then
        in_body[fd] = nil
        return sendmsg(fd, msg, flags)
    end
    in_body[fd] = true
    return sendmsg(fd, msg, flags, 4)   -- the header alone
end)

client_close(function(fd, addr)
    local info = getsockopt(fd, "TCP_INFO")
    rtt.sum, rtt.n = rtt.sum + info.rtt, rtt.n + 1
end)

workload(function(conn)
    local rows = conn:query("SELECT 1")
    assert(rows[1][1] == "1")
end)

local report = run()

local sum, n = 0, 0
for _, r in ipairs(rtt) do sum, n = sum + r.sum, n + r.n end
print(string.format("TCP_NODELAY %s: p50 %.3f ms, p99 %.3f ms, tps %.1f; smoothed RTT at close %.0f us (mean of %d connections)",
    nodelay and "on" or "off", report.latency_ms.p50, report.latency_ms.p99, report.tps,
    n > 0 and sum / n or 0, n))
