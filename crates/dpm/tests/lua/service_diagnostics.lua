-- A readconnroute service with a Lua filter that answers DIAGNOSTICS with the service's
-- diagnostics as JSON-ish text (one row): the test reads counters from it.
local encode = require("common").encode

local last -- the last reply this session's filter saw
local probe = dpm.filter{
    name = "probe",
    route_query = function(session, query)
        if query:sql() == "DIAGNOSTICS" then
            return { columns = { "json" }, rows = { { encode(diag:diagnostics()) } } }
        end
        if query:sql() == "PRETEND" then
            return { ok = true, affected_rows = 7, insert_id = 9, info = "pretended" }
        end
        if query:sql() == "LAST REPLY" then
            return {
                columns = { "type", "rows", "affected_rows", "insert_id", "error_code", "error_message", "server", "in_trx" },
                rows = { { last.type, last.rows, last.affected_rows, last.insert_id, last.error_code,
                           last.error_message, last.server, tostring(session:in_transaction()) } },
            }
        end
    end,
    client_reply = function(session, reply)
        last = reply
    end,
}
local db = dpm.server{ name = "db", address = os.getenv("DPM_BACKEND") }
diag = dpm.service{ name = "diag", router = "readconnroute", servers = { db }, filters = { probe } }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(diag)
