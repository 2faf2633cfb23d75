-- A primary and two replicas under mariadbmon with auto_failover, readconnroute on the
-- primary (crates/dpm/tests/it/monitor.rs kills the primary).
local db1 = dpm.server{ name = "db1", address = os.getenv("DPM_DB1") }
local db2 = dpm.server{ name = "db2", address = os.getenv("DPM_DB2") }
local db3 = dpm.server{ name = "db3", address = os.getenv("DPM_DB3") }
mon = dpm.monitor{
    name = "mon", module = "mariadbmon", servers = { db1, db2, db3 },
    options = {
        monitor_user = os.getenv("DPM_MONITOR_USER"), monitor_password = os.getenv("DPM_MONITOR_PASSWORD"),
        interval = 200, connect_timeout = 500, query_timeout = 1000, failcount = 3,
        auto_failover = true,
        replication_user = os.getenv("DPM_REPL_USER"), replication_password = os.getenv("DPM_REPL_PASSWORD"),
    },
}
dpm.on_server_event(function(event, server)
    print(string.format("server event %s %s role=%s", event, server.name, server.role))
end)
app = dpm.service{ name = "app", router = "readconnroute", servers = { db1, db2, db3 },
                   options = { router_options = "primary" } }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(app)
