-- A workload that reads a map of named queries from a file and runs them at random,
-- each as often as its weight says, counting per name in every thread.
--   dpm bench --script examples/bench/query-map.lua --database sbtest ...
-- DPM_BENCH_QUERIES names another file (default: queries.txt beside this script).

-- 1. Shared variables: the query map (read by every thread's copy of this part).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local file = os.getenv("DPM_BENCH_QUERIES") or (here .. "queries.txt")
local queries, total = {}, 0
for line in assert(io.open(file)):lines() do
    local name, weight, sql = line:match("^%s*([%w_]+)%s*|%s*(%d+)%s*|%s*(.-)%s*$")
    if name then
        total = total + tonumber(weight)
        queries[#queries + 1] = { name = name, upto = total, sql = sql }
    elseif not line:match("^%s*#") and not line:match("^%s*$") then
        error(file .. ": cannot read the line '" .. line .. "'")
    end
end
assert(#queries > 0, file .. ": no queries")

-- Counted in each thread, summed after the run.
local counts = collect({})

-- 2. The workload: one query per transaction.
workload(function(conn)
    local r = math.random(total)
    for _, q in ipairs(queries) do
        if r <= q.upto then
            conn:query(q.sql)
            counts[q.name] = (counts[q.name] or 0) + 1
            return
        end
    end
end)

-- 3. The run.
local report = run()

-- 4. What the threads counted.
local sum = {}
for thread, c in ipairs(counts) do
    for name, n in pairs(c) do sum[name] = (sum[name] or 0) + n end
end
for _, q in ipairs(queries) do
    print(string.format("%-8s %8d queries", q.name, sum[q.name] or 0))
end
print(string.format("tps %.0f over %d threads", report.tps, #counts))
