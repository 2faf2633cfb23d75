-- readwritesplit.lua: reads on replicas, writes and transactions on the primary, the
-- topology from a mariadbmon monitor, read-your-writes with causal reads.
--
-- readwritesplit opens a backend to each server a session uses, logged in on the
-- client's behalf: it needs proxy-held users (dpm.users). `echo -n 'apppass' | dpm
-- hash-password` printed the hash below.
--
--   DPM_LISTEN_PORT        port to listen on                            (default 4006)
--   DPM_PRIMARY            the primary, host:port                       (default 127.0.0.1:3306)
--   DPM_REPLICA1/2         the replicas, host:port                      (default 127.0.0.1:3307/3308)
--   DPM_BACKEND_USER       the account dpm logs in to the servers with  (required)
--   DPM_BACKEND_PASSWORD   its password                                 (required)
--   DPM_MONITOR_USER/_PASSWORD  the monitor's account  (default: the backend account)
--
--   DPM_BACKEND_USER=app_rw DPM_BACKEND_PASSWORD=... dpm --startfile examples/readwritesplit.lua
--   mariadb -h127.0.0.1 -P4006 -uapp -papppass -e 'SELECT @@server_id'      # a replica's id

local env = os.getenv
local user = assert(env("DPM_BACKEND_USER"), "set DPM_BACKEND_USER")
local password = assert(env("DPM_BACKEND_PASSWORD"), "set DPM_BACKEND_PASSWORD")
local function server(name, address)
    return dpm.server{ name = name, address = address, backend_user = user, backend_password = password }
end
local db1 = server("db1", env("DPM_PRIMARY") or "127.0.0.1:3306")
local db2 = server("db2", env("DPM_REPLICA1") or "127.0.0.1:3307")
local db3 = server("db3", env("DPM_REPLICA2") or "127.0.0.1:3308")

mon = dpm.monitor{
    name = "mon", module = "mariadbmon", servers = { db1, db2, db3 },
    options = { monitor_user = env("DPM_MONITOR_USER") or user,
                monitor_password = env("DPM_MONITOR_PASSWORD") or password,
                interval = 1000 },
}

-- `SHOW ROUTE LOG` answers where the session's last statements went and why.
local explain = dpm.filter{
    name = "explain",
    route_query = function(session, query)
        if query:sql() == "SHOW ROUTE LOG" then
            local rows = {}
            for i, line in ipairs(session:route_log()) do rows[i] = { line } end
            return { columns = { "route" }, rows = rows }
        end
    end,
}

app = dpm.service{
    name = "app", router = "readwritesplit", servers = { db1, db2, db3 }, filters = { explain },
    options = { max_replication_lag = 10, causal_reads = "local" },
}

dpm.users{
    { user = "app", password_hash = "*90BE3C2682EBF3427EDA20315D6EAB9E31FD1023", service = app },
}

-- Keep the listener referenced: dpm closes a connection whose object is collected.
listener = assert(dpm.listener("127.0.0.1", tonumber(env("DPM_LISTEN_PORT") or "4006")))
listener:serve(app)
