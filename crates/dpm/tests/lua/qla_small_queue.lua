-- A query log with a tiny queue, writing to DPM_QLA_FILE (a FIFO nobody reads, in
-- crates/dpm/tests/it/builtin_filters.rs: a writer that cannot keep up).
local db = dpm.server{ name = "db", address = os.getenv("DPM_BACKEND") }
local log = dpm.filter{
    name = "log", module = "qla",
    options = { file = os.getenv("DPM_QLA_FILE"), queue_size = 20 },
}
app = dpm.service{ name = "app", router = "readconnroute", servers = { db }, filters = { log } }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(app)
