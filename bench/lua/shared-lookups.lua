-- bench/shared-lookups: every worker runs a task that looks keys up in a shared map and a
-- shared ACL (core.get_map and core.match_acl, alternately, over DPM_LOOKUP_ENTRIES keys
-- that are all present) for DPM_LOOKUP_SECONDS, then prints how many lookups it made and
-- in how many microseconds. The startup file runs on every worker, so each fills the same
-- map and ACL (the same result) before its task starts.
local seconds = tonumber(os.getenv("DPM_LOOKUP_SECONDS") or "3")
-- DPM_LOOKUP_COUNT: stop after this many lookups instead (for counting instructions).
local count = tonumber(os.getenv("DPM_LOOKUP_COUNT") or "0")
local entries = tonumber(os.getenv("DPM_LOOKUP_ENTRIES") or "1000")

local keys = {}
for i = 1, entries do
    keys[i] = "key-" .. i
    core.set_map("bench", keys[i], i)
    core.add_acl("bench", keys[i])
end

-- Seconds since the epoch, to the microsecond.
local function clock()
    local s, us = dpm.gettimeofday()
    return s + us / 1e6
end

core.register_task(function()
    core.msleep(300) -- every worker has loaded, and the others' tasks start too
    local get_map, match_acl = core.get_map, core.match_acl
    local n, found, i = 0, 0, 0
    local started = clock()
    local deadline = started + seconds
    local now = started
    while (count > 0 and n < count) or (count == 0 and now < deadline) do
        for _ = 1, 1000 do
            i = i % entries + 1
            local k = keys[i]
            if get_map("bench", k) then found = found + 1 end
            if match_acl("bench", k) then found = found + 1 end
        end
        n = n + 2000
        core.yield() -- a new CPU burst (and the worker's other tasks may run)
        now = clock()
    end
    assert(found == n, "every key is present")
    print(("lookups worker=%d n=%d us=%d"):format(dpm.stats().worker, n, math.floor((now - started) * 1e6)))
    if count > 0 then os.exit(0) end -- with --threads 1: the process's instructions are this run's
end, { per_worker = true })
