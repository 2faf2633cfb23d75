-- A query log with a tiny queue, writing to DPM_QLA_FILE (a FIFO nobody reads, in
-- crates/dpm/tests/it/builtin_filters.rs: a writer that cannot keep up; or a file).
local db = dpm.server{ name = "db", address = os.getenv("DPM_BACKEND") }
local log = dpm.filter{
    name = "log", module = "qla",
    options = {
        file = os.getenv("DPM_QLA_FILE"), queue_size = 20,
        log = os.getenv("DPM_QLA_LOG") or "sql", sample = tonumber(os.getenv("DPM_QLA_SAMPLE") or "1"),
        match = os.getenv("DPM_QLA_MATCH"),
    },
}
-- `QLA STATS` answers with the log's diagnostics; `REOPEN LOGS` calls dpm.reopen_logs().
local admin = dpm.filter{
    name = "admin", yields = false,
    route_query = function(session, query)
        if query:sql() == "QLA STATS" then
            local d = app:diagnostics().filters[2].diagnostics
            return { columns = { "logged", "written", "dropped" }, rows = { { d.logged, d.written, d.dropped } } }
        elseif query:sql() == "REOPEN LOGS" then
            dpm.reopen_logs()
            return { ok = true }
        end
    end,
}
app = dpm.service{ name = "app", router = "readconnroute", servers = { db }, filters = { admin, log } }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(app)
