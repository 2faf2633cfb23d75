-- dpm bench test: every hook counted in every thread, a text query and a prepared
-- statement per transaction, values collected from each thread (a number held in a
-- local, a table changed in place), printed as one line per thread for the test.
local opened = collect(0)                 -- a number: read from the local after the run
local seen = collect({ closed = 0, sends = 0, recvs = 0, txn = 0, rtt_ok = 0, nodelay_was = 0 })
local errs = collect(0)

client_socket(function(fd, addr)
    assert(addr.family == "inet" and addr.host == "127.0.0.1" and addr.port > 0)
    if getsockopt(fd, "TCP_NODELAY") then seen.nodelay_was = seen.nodelay_was + 1 end
    setsockopt(fd, "SO_KEEPALIVE", true)
    opened = opened + 1
end)

client_close(function(fd, addr)
    local info = getsockopt(fd, "TCP_INFO")
    if info.state == 1 and info.rtt > 0 then seen.rtt_ok = seen.rtt_ok + 1 end
    seen.closed = seen.closed + 1
end)

client_sendmsg(function(fd, msg, flags)
    seen.sends = seen.sends + 1
    return sendmsg(fd, msg, flags)
end)

client_recvmsg(function(fd, msg, flags)
    local n = recvmsg(fd, msg, flags)
    if n > 0 then seen.recvs = seen.recvs + 1 end
    if n < 0 and errno() ~= EAGAIN then errs = errs + 1 end
    return n
end)

workload(function(conn, stmt)
    local rows = conn:query("SELECT 1 + 1 AS two, NULL AS nothing")
    assert(rows[1][1] == "2" and rows[1][2] == nil and rows.columns[1] == "two")
    local r = stmt:execute(conn:id(), "x")
    assert(r[1][1] == conn:id() and r[1][2] == "x", "prepared statement answered wrong")
    assert(conn:query("DO 1") == 0)
    seen.txn = seen.txn + 1
end, function(conn)
    return conn:prepare("SELECT ? + 0, CONCAT(?, '')")
end)

local report = run()

for t = 1, #seen do
    local s = seen[t]
    print(string.format("thread=%d opened=%d closed=%d sends=%d recvs=%d txn=%d rtt_ok=%d nodelay=%d errs=%d",
        t, opened[t], s.closed, s.sends, s.recvs, s.txn, s.rtt_ok, s.nodelay_was, errs[t]))
end
print(string.format("report transactions=%d queries=%d threads=%d", report.transactions, report.queries, #report.per_thread))
