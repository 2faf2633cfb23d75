-- bench/lua/service.lua: a readconnroute service of one server, no filter. Each session
-- is routed once; after that no stage asks to see anything, so packets are forwarded
-- as on plain passthrough. bench/run measures what a service costs against passthrough.
-- Environment: DPM_LISTEN_HOST/PORT, DPM_BACKEND_HOST/PORT (as examples/passthrough.lua).
local host = os.getenv("DPM_LISTEN_HOST") or "127.0.0.1"
local port = tonumber(os.getenv("DPM_LISTEN_PORT") or "5500")
local backend = (os.getenv("DPM_BACKEND_HOST") or "127.0.0.1") .. ":" .. (os.getenv("DPM_BACKEND_PORT") or "3306")

local db = dpm.server{ name = "db", address = backend }
local filters = bench_filters and bench_filters() or nil
service = dpm.service{ name = "bench", router = "readconnroute", servers = { db }, filters = filters }
listener = assert(dpm.listener(host, port))
listener:serve(service)
-- bench/metrics-scrape: the admin API (and its /metrics) on DPM_ADMIN_PORT, when set.
if os.getenv("DPM_ADMIN_PORT") then
    dpm.admin{ listen = "127.0.0.1:" .. os.getenv("DPM_ADMIN_PORT") }
end
