-- bench/lua/service-filter.lua: bench/lua/service.lua plus a pass-through Lua filter.
-- By default it classifies every statement (query:classify(): type, writes, tables,
-- digest) and passes it on: the issue's "classification of every statement and a
-- pass-through Lua filter", whose target is <= 1.25x dpm-passthrough's CPU per query.
-- DPM_BENCH_FILTER picks a variant, to see where the cost goes:
--   pass             route_query only, returning nil (no classification)
--   classify         route_query classifying every statement (the default)
--   classify+reply   the same, plus a client_reply function seeing every reply
--   classify-sync    `classify` declared `yields = false` (plain calls, no coroutine)
local variant = os.getenv("DPM_BENCH_FILTER") or "classify"

function bench_filters()
    local spec = { name = "bench-" .. variant, yields = variant ~= "classify-sync" }
    if variant == "pass" then
        spec.route_query = function(session, query) return nil end
    elseif variant == "classify" or variant == "classify+reply" or variant == "classify-sync" then
        spec.route_query = function(session, query)
            local c = query:classify()
            return nil
        end
    else
        error("DPM_BENCH_FILTER must be pass, classify, classify+reply or classify-sync, not " .. variant)
    end
    if variant == "classify+reply" then
        spec.client_reply = function(session, reply) end
    end
    return { dpm.filter(spec) }
end

local here = dpm.startfile:match("^(.*)/[^/]*$") or "."
dofile(here .. "/service.lua")
