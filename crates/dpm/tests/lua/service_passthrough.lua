-- A readconnroute service whose Lua filter looks at every statement and every reply and
-- passes everything: clients must see exactly what they see directly.
local watch = dpm.filter{
    name = "watch",
    route_query = function(session, query)
        session:set_priv((session:get_priv() or 0) + 1)
        return nil
    end,
    client_reply = function(session, reply) end,
}
local db = dpm.server{ name = "db", address = "127.0.0.1:" .. os.getenv("DPM_BACKEND_PORT") }
svc = dpm.service{ name = "pass", router = "readconnroute", servers = { db }, filters = { watch } }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(svc)
