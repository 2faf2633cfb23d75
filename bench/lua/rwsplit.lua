-- bench/lua/rwsplit.lua: a readwritesplit service over bench/run's MariaDB (db1, the
-- primary) and its two GTID replicas (db2, db3), under a mariadbmon monitor, for the
-- sysbench account held by the proxy (readwritesplit opens the extra backends of a
-- session only for proxy-held users: dpm logs in to them itself). bench/run measures
-- what readwritesplit costs against plain passthrough. No filter.
-- Environment (bench/run sets it):
--   DPM_LISTEN_HOST/PORT            the listener (default 127.0.0.1:5500)
--   DPM_DB1, DPM_DB2, DPM_DB3       host:port of db1 (primary), db2 and db3 (replicas)
--   DPM_BENCH_USER                  the sysbench account: the proxy-held user, the account
--   DPM_BENCH_PASSWORD              dpm logs in to every server with, and the monitor's
--   DPM_BENCH_HASH                  its mysql_native_password hash (dpm hash-password)
local function need(name)
    return os.getenv(name) or error("bench/lua/rwsplit.lua: " .. name .. " is not set")
end
local host = os.getenv("DPM_LISTEN_HOST") or "127.0.0.1"
local port = tonumber(os.getenv("DPM_LISTEN_PORT") or "5500")
local user, password = need("DPM_BENCH_USER"), need("DPM_BENCH_PASSWORD")

local function server(name, address)
    return dpm.server{ name = name, address = address, backend_user = user, backend_password = password }
end
local db1 = server("db1", need("DPM_DB1"))
local db2 = server("db2", need("DPM_DB2"))
local db3 = server("db3", need("DPM_DB3"))
-- Objects are kept in globals: dpm closes what is garbage-collected.
monitor = dpm.monitor{
    name = "mon", module = "mariadbmon", servers = { db1, db2, db3 },
    options = { monitor_user = user, monitor_password = password, interval = 1000 },
}
app = dpm.service{ name = "app", router = "readwritesplit", servers = { db1, db2, db3 } }
dpm.users{ { user = user, password_hash = need("DPM_BENCH_HASH"), service = "app" } }
listener = assert(dpm.listener(host, port))
listener:serve(app)
