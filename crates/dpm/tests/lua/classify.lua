-- A filter that answers `CLASSIFY <sql>` with dpm.classify(<sql>) as one row,
-- `/*q*/ <sql>` with query:classify() of that statement (the table the filter session
-- reuses from statement to statement), and `WRITES` with how many statements of this
-- session query:classify() found to write.
local classify = dpm.filter{
    name = "classify",
    yields = false, -- never sleeps: plain calls, no coroutine
    route_query = function(session, query)
        local sql = query:sql()
        if not sql then return nil end
        local target = sql:match("^CLASSIFY (.*)$")
        if target then
            local c = dpm.classify(target)
            return {
                columns = { "type", "write", "trx", "tables", "digest", "hash_is_int" },
                rows = { { c.type, tostring(c.write), c.trx, table.concat(c.tables, ","), c.digest,
                           tostring(math.type(c.digest_hash) == "integer") } },
            }
        end
        if sql:sub(1, 5) == "/*q*/" then
            local c = query:classify()
            return {
                columns = { "type", "trx", "tables", "digest" },
                rows = { { c.type, c.trx, table.concat(c.tables, ","), c.digest } },
            }
        end
        if sql == "WRITES" then
            return { columns = { "writes" }, rows = { { session:get_priv() or 0 } } }
        end
        local c = query:classify()
        assert(c == query:classify() or c.digest == query:classify().digest)
        if c.write then
            session:set_priv((session:get_priv() or 0) + 1)
        end
    end,
}
local db = dpm.server{ name = "db", address = os.getenv("DPM_BACKEND") }
svc = dpm.service{ name = "classified", router = "readconnroute", servers = { db }, filters = { classify } }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(svc)
