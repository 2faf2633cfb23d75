-- Fetches and converters as lua.NAME expressions in module options
-- (crates/dpm/tests/it/services_lua_action.rs), on a readconnroute service whose one
-- server is named "db":
--   route = "lua.pick,lua.lower"  the service's routing hint: "DB" lowered to "db" (its own
--                                  server: fine); for SQL with ELSEWHERE, "elsewhere"
--                                  (readconnroute refuses another server: ERROR 1105);
--                                  for SQL with "nowhere", nil (no hint)
--   qla match_on = "lua.tier"     only statements whose tier is "gold" are logged ...
--   qla fields                    ... with "tenant" (from the SQL, upper-cased) and
--                                  "waits" (a fetch that tries to wait: logged as an
--                                  error, the field is null)
core.register_fetches("pick", function(txn)
    local sql = txn:req_channel():dup() or ""
    if sql:find("ELSEWHERE") then return "ELSEWHERE" end
    if sql:find("nowhere") then return nil end
    return "DB"
end)
core.register_converters("lower", function(s) return s:lower() end)
core.register_converters("upper", function(s) return s:upper() end)
core.register_fetches("tier", function(txn)
    return (txn:req_channel():dup() or ""):find("gold") and "gold" or "basic"
end)
core.register_fetches("tenant", function(txn)
    return (txn:req_channel():dup() or ""):match("tenant=(%w+)")
end)
core.register_fetches("waits", function(txn)
    core.msleep(1)
    return "never"
end)

local log = dpm.filter{ name = "gold_log", module = "qla", options = {
    file = os.getenv("DPM_QLA_FILE"),
    match_on = "lua.tier", match = "^gold$",
    fields = { tenant = "lua.tenant,lua.upper", waits = "lua.waits" },
} }
local db = dpm.server{ name = "db", address = "127.0.0.1:" .. os.getenv("DPM_BACKEND_PORT") }
svc = dpm.service{ name = "fetched", router = "readconnroute", servers = { db }, filters = { log },
                   route = "lua.pick,lua.lower" }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(svc)
