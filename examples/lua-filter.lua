-- lua-filter.lua: a filter written in Lua in front of a readconnroute service.
--
-- route_query sees every client command before the router does, and may pass it on,
-- rewrite its SQL, block it with an error, answer it with a result set, or ask for a
-- server; client_reply sees each complete reply on its way back. Each session has
-- private data (session:get_priv / session:set_priv). A filter may sleep
-- (core.msleep) without holding up other sessions.
--
-- This one:
--   * blocks DROP statements with ERROR 1142 (unless the SQL carries /* allow-drop */);
--   * answers `SHOW FILTER STATS` itself with a result set of this session's counts;
--   * classifies every statement (query:classify(), the query classifier module) and
--     counts those that may write;
--   * rewrites `SELECT ... FROM legacy_table` to the table's new name, `modern_table`;
--   * delays statements tagged /* slow-down */ by 200 ms (only that session waits);
--   * counts statements and the rows of the replies per session.
--
--   DPM_LISTEN_PORT   port to listen on        (default 4007)
--   DPM_BACKEND       the server, host:port    (default 127.0.0.1:3306)

local listen_port = tonumber(os.getenv("DPM_LISTEN_PORT") or "4007")

local guard = dpm.filter{
    name = "guard",
    route_query = function(session, query)
        local counts = session:get_priv() or { statements = 0, writes = 0, rows = 0 }
        session:set_priv(counts)
        counts.statements = counts.statements + 1
        local sql = query:sql()
        if not sql then
            return nil -- not a statement (ping, prepared-statement execution, ...): pass it on
        end
        if query:classify().write then
            counts.writes = counts.writes + 1
        end
        if sql:find("/%* slow%-down %*/") then
            core.msleep(200)
        end
        local upper = sql:upper()
        if upper:match("^%s*DROP%s") and not sql:find("/%* allow%-drop %*/") then
            return { error = "DROP is not allowed through this service", code = 1142, sqlstate = "42000" }
        end
        if upper:match("^%s*SHOW%s+FILTER%s+STATS%s*$") then
            return {
                columns = { "statements", "writes", "rows", "server" },
                rows = { { counts.statements, counts.writes, counts.rows, session:server() } },
            }
        end
        if sql:find("legacy_table", 1, true) then
            query:set_sql((sql:gsub("legacy_table", "modern_table")))
        end
        return nil
    end,
    client_reply = function(session, reply)
        local counts = session:get_priv()
        if counts then
            counts.rows = counts.rows + reply.rows
        end
    end,
}

local db = dpm.server{ name = "db", address = os.getenv("DPM_BACKEND") or "127.0.0.1:3306" }

guarded = dpm.service{
    name = "guarded",
    router = "readconnroute",
    servers = { db },
    filters = { guard },
}

listener = assert(dpm.listener("127.0.0.1", listen_port))
listener:serve(guarded)
