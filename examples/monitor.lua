-- monitor.lua: a readconnroute service whose servers' roles come from a mariadbmon
-- monitor instead of the declarations: writes go to whichever server is the primary now.
--
--   DPM_LISTEN_PORT        port to listen on                     (default 4006)
--   DPM_PRIMARY            a server, host:port                   (default 127.0.0.1:3306)
--   DPM_REPLICA            another, host:port                    (default 127.0.0.1:3307)
--   DPM_MONITOR_USER       the monitor's login                   (default monitor)
--   DPM_MONITOR_PASSWORD   its password                          (default empty)
--
--   dpm --startfile examples/monitor.lua
--   mariadb -h127.0.0.1 -P4006 -u<user> -p -e 'SELECT @@port'    # the primary's port

local listen_port = tonumber(os.getenv("DPM_LISTEN_PORT") or "4006")

-- No roles declared: the monitor finds them (read_only, SHOW ALL SLAVES STATUS).
local db1 = dpm.server{ name = "db1", address = os.getenv("DPM_PRIMARY") or "127.0.0.1:3306" }
local db2 = dpm.server{ name = "db2", address = os.getenv("DPM_REPLICA") or "127.0.0.1:3307" }

mon = dpm.monitor{
    name = "mon", module = "mariadbmon", servers = { db1, db2 },
    options = {
        monitor_user = os.getenv("DPM_MONITOR_USER") or "monitor",
        monitor_password = os.getenv("DPM_MONITOR_PASSWORD") or "",
        interval = 500,
    },
}

-- Every change the monitor sees (and, first, the state it found).
dpm.on_server_event(function(event, server)
    print(string.format("server event %s %s (role %s, lag %s)",
        event, server.name, server.role, tostring(server.lag)))
end)

app = dpm.service{
    name = "app", router = "readconnroute", servers = { db1, db2 },
    options = { router_options = "primary" },
}

-- Keep the listener referenced: dpm closes a connection whose object is collected.
listener = assert(dpm.listener("127.0.0.1", listen_port))
listener:serve(app)
