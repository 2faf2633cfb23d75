-- bench/lua/service-filter.lua: bench/lua/service.lua plus a pass-through Lua filter.
-- By default it classifies every statement (query:classify(): type, writes, tables,
-- digest) and passes it on: the issue's "classification of every statement and a
-- pass-through Lua filter", whose target is <= 1.25x dpm-passthrough's CPU per query.
-- DPM_BENCH_FILTER picks a variant, to see where the cost goes:
--   pass             route_query only, returning nil (no classification)
--   classify         route_query classifying every statement (the default)
--   classify+reply   the same, plus a client_reply function seeing every reply
--   classify-sync    `classify` declared `yields = false` (plain calls, no coroutine)
-- and the built-in filters (issue 8's targets):
--   builtin          regex (10 rules) + firewall (1,000 regex rules) + qla to a file
--                    (DPM_BENCH_QLA_FILE, default /tmp/dpm-bench-queries.log): <= 1.35x
--   nomatch-regex    a regex filter whose one rule never matches: <= 1.05x
--   nomatch-qla      a qla whose `match` never matches: <= 1.05x
local variant = os.getenv("DPM_BENCH_FILTER") or "classify"

-- Rules that never match sysbench's statements, as real rule sets mostly don't.
local function builtin_filters()
    local never = [[\bnever_table_%d\b]]
    local rewrites = {}
    for i = 1, 10 do
        rewrites[i] = { match = string.format(never, i), replace = "other_table_" .. i }
    end
    local rules = {}
    for i = 1, 1000 do
        rules[i] = { name = "r" .. i, regex = string.format(never, 100 + i) }
    end
    local qla_file = os.getenv("DPM_BENCH_QLA_FILE") or "/tmp/dpm-bench-queries.log"
    return {
        dpm.filter{ name = "bench-regex", module = "regex", options = { rules = rewrites } },
        dpm.filter{ name = "bench-firewall", module = "firewall", options = { rules = rules } },
        dpm.filter{ name = "bench-qla", module = "qla", options = { file = qla_file } },
    }
end

function bench_filters()
    if variant == "builtin" then
        return builtin_filters()
    elseif variant == "nomatch-regex" then
        return { dpm.filter{ name = "bench-nomatch", module = "regex",
                 options = { match = [[\bnever_table\b]], replace = "x" } } }
    elseif variant == "nomatch-qla" then
        return { dpm.filter{ name = "bench-nomatch", module = "qla",
                 options = { file = "/tmp/dpm-bench-never.log", match = [[\bnever_table\b]] } } }
    end
    local spec = { name = "bench-" .. variant, yields = variant ~= "classify-sync" }
    if variant == "pass" then
        spec.route_query = function(session, query) return nil end
    elseif variant == "classify" or variant == "classify+reply" or variant == "classify-sync" then
        spec.route_query = function(session, query)
            local c = query:classify()
            return nil
        end
    else
        error("DPM_BENCH_FILTER must be pass, classify, classify+reply, classify-sync, builtin, nomatch-regex or nomatch-qla, not " .. variant)
    end
    if variant == "classify+reply" then
        spec.client_reply = function(session, reply) end
    end
    return { dpm.filter(spec) }
end

local here = dpm.startfile:match("^(.*)/[^/]*$") or "."
dofile(here .. "/service.lua")
