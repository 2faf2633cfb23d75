-- A server's connection pool (crates/dpm/tests/it/pool.rs): a readconnroute service
-- whose users dpm holds, in front of a server that keeps its connections for the next
-- session.
--
--   DPM_BACKEND                 host:port of the server
--   DPM_BACKEND_USER/_PASSWORD  the server's account dpm logs in with
--   DPM_NATIVE_HASH             password_hash of user "app" (mysql_native_password)
--   DPM_POOL_MAX                persistpoolmax (connections kept per worker)
--   DPM_POOL_TIME               persistmaxtime (seconds), default 300
--   DPM_PORT                    the listener's port
--   DPM_BACKEND_CA              set: dpm talks TLS to the server, verifying it with this CA
--
-- `DPM POOL` is answered by dpm (a Lua filter) with the server's pool diagnostics:
-- idle and reused.

local env = os.getenv

local server_tls = nil
if env("DPM_BACKEND_CA") then
    server_tls = { ca = env("DPM_BACKEND_CA") }
end
local db = dpm.server{
    name = "db",
    address = env("DPM_BACKEND"),
    backend_user = env("DPM_BACKEND_USER"),
    backend_password = env("DPM_BACKEND_PASSWORD"),
    tls = server_tls,
    persistpoolmax = tonumber(env("DPM_POOL_MAX")),
    persistmaxtime = tonumber(env("DPM_POOL_TIME") or "300"),
}

local probe = dpm.filter{
    name = "pool_probe",
    route_query = function(session, query)
        if query:sql() == "DPM POOL" then
            local pool = db:diagnostics().pool
            return { columns = { "idle", "reused" }, rows = { { pool.idle, pool.reused } } }
        end
    end,
}

app = dpm.service{ name = "app", router = "readconnroute", servers = { db }, filters = { probe } }
dpm.users{ { user = "app", password_hash = env("DPM_NATIVE_HASH"), service = app } }

listener = assert(dpm.listener("127.0.0.1", tonumber(env("DPM_PORT"))))
listener:serve(app)
