-- A readconnroute service and a stats port. DPM_FILTER picks the chain: "none" (no
-- filter), "replies" (a Lua filter with client_reply only), "requests" (route_query
-- only), "nomatch" (built-in filters whose `match` never matches) or "match" (the same
-- matching everything). The stats port prints dpm.stats() on each connect.
local common = require "common"
local which = os.getenv("DPM_FILTER") or "none"
local filters = {}
if which == "replies" then
    filters = { dpm.filter{ name = "replies", client_reply = function(session, reply) end } }
elseif which == "requests" then
    filters = { dpm.filter{ name = "requests", route_query = function(session, query) end } }
elseif which == "nomatch" or which == "match" then
    local re = which == "match" and "." or [[\bnever_table\b]]
    filters = {
        dpm.filter{ name = "log", module = "qla", options = { file = "/dev/null", match = re } },
        dpm.filter{ name = "rw", module = "regex", options = { match = re, replace = "$0" } },
        dpm.filter{ name = "tee", module = "tee", options = { target = "fast", mirror_user = "x", match = re, reconnect_interval = 60000 } },
    }
end
local db = dpm.server{ name = "db", address = "127.0.0.1:" .. os.getenv("DPM_BACKEND_PORT") }
svc = dpm.service{ name = "fast", router = "readconnroute", servers = { db }, filters = filters }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(svc)
common.stats_listener(tonumber(os.getenv("DPM_STATS_PORT")))
