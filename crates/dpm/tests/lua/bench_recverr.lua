-- dpm bench test: TX software timestamps on every client socket; client_recverr reads
-- them from the error queue and counts the SCM_TIMESTAMPING control messages.
local stamps = collect(0)

client_socket(function(fd, addr)
    -- (SOF_TIMESTAMPING_OPT_ID needs a connected TCP socket: not here, before connect.)
    setsockopt(fd, "SO_TIMESTAMPING", SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE
        | SOF_TIMESTAMPING_OPT_TSONLY)
end)

client_recverr(function(fd, msg, flags)
    assert(flags & MSG_ERRQUEUE ~= 0)
    local n = recvmsg(fd, msg, flags)
    if n >= 0 then
        for _, c in ipairs(msg:control()) do
            if c.level == SOL_SOCKET and c.type == SCM_TIMESTAMPING then stamps = stamps + 1 end
        end
    end
    return n
end)

workload(function(conn)
    conn:query("SELECT 1")
end)

run()
local total = 0
for t = 1, #stamps do total = total + stamps[t] end
print("timestamps=" .. total .. " threads=" .. #stamps)
