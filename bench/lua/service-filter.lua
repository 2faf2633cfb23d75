-- bench/lua/service-filter.lua: bench/lua/service.lua plus a Lua filter that classifies
-- every statement (query:classify(): type, writes, tables, digest) and passes it on,
-- and sees every reply. The issue's target: <= 1.25x dpm-passthrough's CPU per query.
function bench_filters()
    return {
        dpm.filter{
            name = "classify-and-pass",
            route_query = function(session, query)
                local c = query:classify()
                return nil
            end,
            client_reply = function(session, reply) end,
        },
    }
end

local here = dpm.startfile:match("^(.*)/[^/]*$") or "."
dofile(here .. "/service.lua")
