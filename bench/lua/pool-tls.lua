-- bench/lua/pool-tls.lua: TLS on both sides as bench/lua/passthrough-tls.lua, but with
-- the bench account held by dpm and the server's connection pool on: dpm checks the
-- client's password itself, logs in to MariaDB with the same account mapped as the
-- server's backend_user, and keeps up to DPM_POOL_MAX (default 64) logged-in TLS
-- connections per worker for the next session (persistpoolmax). A new client then costs
-- dpm one TLS handshake (as the client's server) and MariaDB a COM_RESET_CONNECTION.
-- bench/connrate (target dpm-tls-pool) measures it.
--
-- Environment: DPM_LISTEN_HOST/PORT, DPM_BACKEND_HOST/PORT, DPM_TLS_CERT, DPM_TLS_KEY,
--   DPM_TLS_CA (as passthrough-tls.lua), and
--   DPM_BENCH_USER, DPM_BENCH_PASSWORD  the account (the same at dpm and at MariaDB)
--   DPM_BENCH_HASH                      its mysql_native_password hash (dpm hash-password)
--   DPM_POOL_MAX                        persistpoolmax (default 64)

local function required(name)
    return os.getenv(name) or error(name .. " is not set (see bench/lua/pool-tls.lua)")
end
local db = dpm.server{
    name = "db",
    address = required("DPM_BACKEND_HOST") .. ":" .. required("DPM_BACKEND_PORT"),
    tls = { ca = required("DPM_TLS_CA") },
    backend_user = required("DPM_BENCH_USER"),
    backend_password = required("DPM_BENCH_PASSWORD"),
    persistpoolmax = tonumber(os.getenv("DPM_POOL_MAX") or "64"),
}
bench = dpm.service{ name = "bench", router = "readconnroute", servers = { db } }
dpm.users{ { user = required("DPM_BENCH_USER"), password_hash = required("DPM_BENCH_HASH"), service = bench } }
listener = assert(dpm.listener(required("DPM_LISTEN_HOST"), tonumber(required("DPM_LISTEN_PORT")), {
    tls = { cert = required("DPM_TLS_CERT"), key = required("DPM_TLS_KEY"), require = true },
}))
listener:serve(bench)
