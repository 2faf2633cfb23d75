-- A primary and two replicas under mariadbmon, readconnroute on the primary, and
-- `SWITCHOVER TO <server>` answered with what dpm.switchover() returned
-- (crates/dpm/tests/it/monitor.rs). DPM_AUTO_FAILOVER=1 and DPM_AUTO_REJOIN=1 turn
-- those on; DPM_DELAYED_RETRY (ms) is readconnroute's delayed_retry_timeout.
local db1 = dpm.server{ name = "db1", address = os.getenv("DPM_DB1") }
local db2 = dpm.server{ name = "db2", address = os.getenv("DPM_DB2") }
local db3 = dpm.server{ name = "db3", address = os.getenv("DPM_DB3") }
mon = dpm.monitor{
    name = "mon", module = "mariadbmon", servers = { db1, db2, db3 },
    options = {
        monitor_user = os.getenv("DPM_MONITOR_USER"), monitor_password = os.getenv("DPM_MONITOR_PASSWORD"),
        interval = 200, connect_timeout = 500, query_timeout = 1000, failcount = 3,
        auto_failover = os.getenv("DPM_AUTO_FAILOVER") == "1",
        auto_rejoin = os.getenv("DPM_AUTO_REJOIN") == "1",
        replication_user = os.getenv("DPM_REPL_USER"), replication_password = os.getenv("DPM_REPL_PASSWORD"),
    },
}
dpm.on_server_event(function(event, server)
    print(string.format("server event %s %s role=%s", event, server.name, server.role))
end)
local admin = dpm.filter{
    name = "admin",
    route_query = function(session, query)
        local to = (query:sql() or ""):match("^SWITCHOVER TO (%w+)$")
        if to then
            local ok, err = dpm.switchover(to)
            return { columns = { "ok", "error" }, rows = { { tostring(ok), err } } }
        end
    end,
}
app = dpm.service{ name = "app", router = "readconnroute", servers = { db1, db2, db3 },
                   filters = { admin },
                   options = { router_options = "primary",
                               delayed_retry_timeout = tonumber(os.getenv("DPM_DELAYED_RETRY") or "0") } }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(app)
