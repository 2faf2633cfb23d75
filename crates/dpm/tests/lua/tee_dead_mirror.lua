-- A tee whose mirror is dead, and the same server without the tee on a second port
-- (crates/dpm/tests/it/builtin_filters.rs compares their results and latencies).
local db = dpm.server{ name = "db", address = os.getenv("DPM_BACKEND") }
local dead = dpm.server{ name = "dead", address = os.getenv("DPM_MIRROR") }
mirror = dpm.service{ name = "mirror", router = "readconnroute", servers = { dead } }
local tee = dpm.filter{
    name = "tee", module = "tee",
    options = { target = "mirror", mirror_user = "nobody", reconnect_interval = 100, queue_size = 10 },
}
app = dpm.service{ name = "app", router = "readconnroute", servers = { db }, filters = { tee } }
plain = dpm.service{ name = "plain", router = "readconnroute", servers = { db } }
teed = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
teed:serve(app)
direct = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_PLAIN_PORT"))))
direct:serve(plain)
