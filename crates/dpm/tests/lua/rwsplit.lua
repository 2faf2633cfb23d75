-- readwritesplit over a GTID primary and two replicas under mariadbmon, for a
-- proxy-held user (crates/dpm/tests/it/rwsplit.rs). Settings from the environment:
--   DPM_LISTEN_PORT                 the service's listener
--   DPM_PASS_PORT                   (optional) a listener of a second service, same
--                                   router, pass-through logins (no proxy-held users)
--   DPM_DB1, DPM_DB2, DPM_DB3       host:port of db1 (primary), db2 and db3 (replicas)
--   DPM_MONITOR_USER/_PASSWORD      the monitor's account
--   DPM_BACKEND_USER/_PASSWORD      the account dpm logs in to every server with
--   DPM_APP_USER, DPM_APP_HASH      the proxy-held user (mysql_native_password hash)
--   DPM_MAX_LAG                     max_replication_lag (seconds, default -1)
--   DPM_HISTORY                     max_sescmd_history (default 50)
--   DPM_NO_FILTER=1                 no Lua filter in the chain (the router alone sees the
--                                   statements, as in production; the SHOW statements
--                                   below are then not answered)
--   DPM_CAUSAL_TIMEOUT              set: causal_reads = "local" with this causal_reads_timeout (ms)
--   DPM_REPLAY=1                    transaction_replay = true
--   DPM_STRICT_SP_CALLS=1           strict_sp_calls = true (a CALL pins the session)
--   DPM_ADMIN_PORT=P                the admin API on 127.0.0.1:P, without credentials
--   DPM_AUTO_FAILOVER=1             the monitor fails over (failcount 3), with
--   DPM_REPL_USER/_PASSWORD         this replication account
--   DPM_NO_THROTTLE=1               no login throttle (clients that fail to log in, as
--                                   accounts dpm does not hold, slow no one down)
--
-- Statements answered by dpm (a Lua filter, so they are not routed themselves):
--   SHOW ROUTE LOG      one row per entry of session:route_log()
--   SHOW BACKENDS       one row per server the session has a backend to
--   SHOW RWSPLIT        the router's diagnostics, as JSON
local env = os.getenv
local encode = require("common").encode
local function server(name, address)
    return dpm.server{ name = name, address = address,
                       backend_user = env("DPM_BACKEND_USER"), backend_password = env("DPM_BACKEND_PASSWORD") }
end
local db1 = server("db1", env("DPM_DB1"))
local db2 = server("db2", env("DPM_DB2"))
local db3 = server("db3", env("DPM_DB3"))
mon = dpm.monitor{
    name = "mon", module = "mariadbmon", servers = { db1, db2, db3 },
    options = { monitor_user = env("DPM_MONITOR_USER"), monitor_password = env("DPM_MONITOR_PASSWORD"),
                interval = 200, connect_timeout = 500, query_timeout = 1000, failcount = 3,
                auto_failover = env("DPM_AUTO_FAILOVER") == "1",
                replication_user = env("DPM_REPL_USER"), replication_password = env("DPM_REPL_PASSWORD") },
}
dpm.on_server_event(function(event, s) print(string.format("server event %s %s role=%s", event, s.name, s.role)) end)

local function rows_of(list)
    local rows = {}
    for i, v in ipairs(list) do rows[i] = { v } end
    return rows
end
local function admin(name) return dpm.filter{
    name = name,
    route_query = function(session, query)
        local sql = query:sql()
        if sql == "SHOW ROUTE LOG" then
            return { columns = { "route" }, rows = rows_of(session:route_log()) }
        elseif sql == "SHOW BACKENDS" then
            return { columns = { "server" }, rows = rows_of(session:backends()) }
        elseif sql == "SHOW RWSPLIT" then
            local service = session:service() == "app" and app or pass
            return { columns = { "diagnostics" }, rows = { { encode(service:diagnostics()) } } }
        end
    end,
} end
local options = { max_replication_lag = tonumber(env("DPM_MAX_LAG") or "-1"),
                  max_sescmd_history = tonumber(env("DPM_HISTORY") or "50"),
                  causal_reads = env("DPM_CAUSAL_TIMEOUT") and "local" or "none",
                  causal_reads_timeout = tonumber(env("DPM_CAUSAL_TIMEOUT") or "10000"),
                  transaction_replay = env("DPM_REPLAY") == "1",
                  strict_sp_calls = env("DPM_STRICT_SP_CALLS") == "1" }
local filters = { admin("admin") }
if env("DPM_NO_FILTER") == "1" then filters = {} end
app = dpm.service{ name = "app", router = "readwritesplit", servers = { db1, db2, db3 },
                   filters = filters, options = options }
dpm.users{ { user = env("DPM_APP_USER"), password_hash = env("DPM_APP_HASH"), service = "app" } }
if env("DPM_ADMIN_PORT") then dpm.admin{ listen = "127.0.0.1:" .. env("DPM_ADMIN_PORT") } end
if env("DPM_NO_THROTTLE") == "1" then dpm.login_throttle{ failures = 0 } end
listener = assert(dpm.listener("127.0.0.1", tonumber(env("DPM_LISTEN_PORT"))))
listener:serve(app)
if env("DPM_PASS_PORT") then
    pass = dpm.service{ name = "pass", router = "readwritesplit", servers = { db1, db2, db3 },
                        filters = { admin("pass_admin") }, options = options }
    pass_listener = assert(dpm.listener("127.0.0.1", tonumber(env("DPM_PASS_PORT"))))
    pass_listener:serve(pass)
end
