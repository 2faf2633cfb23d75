-- examples/monitor.lua with a third server that is down (DPM_DEAD), roles declared
-- wrongly on purpose (the monitor must correct them), and `SHOW DPM SERVERS` answered
-- from dpm.servers() (crates/dpm/tests/it/monitor.rs).
local db1 = dpm.server{ name = "db1", address = os.getenv("DPM_PRIMARY"), role = "replica" }
local db2 = dpm.server{ name = "db2", address = os.getenv("DPM_REPLICA"), role = "primary" }
local db3 = dpm.server{ name = "db3", address = os.getenv("DPM_DEAD") }
mon = dpm.monitor{
    name = "mon", module = "mariadbmon", servers = { db1, db2, db3 },
    options = {
        monitor_user = os.getenv("DPM_MONITOR_USER"), monitor_password = os.getenv("DPM_MONITOR_PASSWORD"),
        interval = 200, connect_timeout = 1000,
    },
}
dpm.on_server_event(function(event, server)
    print(string.format("server event %s %s role=%s", event, server.name, server.role))
end)
local admin = dpm.filter{
    name = "admin",
    route_query = function(session, query)
        if query:sql() == "SHOW DPM SERVERS" then
            local rows = {}
            for _, name in ipairs({ "db1", "db2", "db3" }) do
                local s = dpm.servers()[name]
                local found = s.monitor or {}
                rows[#rows + 1] = { name, s.role, s.state, s.lag, found.server_id, found.read_only }
            end
            return { columns = { "name", "role", "state", "lag", "server_id", "read_only" }, rows = rows }
        elseif query:sql() == "SHOW DPM MONITOR" then
            local d = mon:diagnostics()
            return { columns = { "module", "checks", "servers" }, rows = { { d.module, d.checks, #d.servers } } }
        end
    end,
}
app = dpm.service{
    name = "app", router = "readconnroute", servers = { db1, db2, db3 },
    filters = { admin }, options = { router_options = "primary" },
}
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(app)
