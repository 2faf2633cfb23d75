-- dpml.lua: the Lua-level standard library for dpm scripts.
--
--   require "dpml"        -- returns the library table and also sets the global `dpml`
--
-- Functions (reference §9; the original's bugs listed in §9 and §14 are fixed):
--
--   dpml.register_callbacks(obj, {[dpm.STATE] = fn, ...})
--       obj:register(state, fn) for every pair; obj is a conn or a dpm.new_callback().
--
--   dpml.send_resultset(conn, {fields = {{name =, type =}, ...}, rows = {{v, ...}, ...}})
--       Wires a complete text result set. nil values (holes) are sent as SQL NULL; the
--       column count is table.maxn(fields) and every row is packed with exactly that
--       many values. A field without a type is MYSQL_TYPE_STRING. Return DPM_NOPROXY
--       from the MYC_SENT_CMD callback that calls it.
--
--   dpml.send_error(conn, sqlstate, errnum, message)
--       Wires one ERR packet.
--
--   dpml.execute_query_buffered(server, query, cb)
--       Runs `query` (SQL text or a dpm.cmd) on `server` behind the back of any linked
--       client: every packet of the response is swallowed. When the response is complete
--       it calls cb(server_id, cmd, {fields = {{name =, type =}, ...},
--       rows = {{v1, ...}, ...}}, nil) (SQL NULL is a nil hole in a row; an OK-only
--       result has empty tables plus affected_rows / insert_id / warning_count; further
--       result sets of a multi-result are in result.more = {{fields =, rows =}, ...}),
--       or cb(server_id, cmd, nil, err) with the ERR packet object. If the server closes
--       before the response is complete, cb gets an ERR object 2013 (HY000) "Lost
--       connection to server during query" (at once, or within 100 ms when the conn
--       has a MY_CLOSING callback of its own, which hides the package's). The overlay
--       is always removed before cb runs, so cb may run the next query. Returns the
--       cmd object.
--       One query at a time per server: a second call while one runs raises an error.
--
--   dpml.connect_mysql_server{host =, port = 3306, path =, user =, pass =, db =,
--                             callback =}
--       Connects (unix socket when `path` is set) and logs in with
--       mysql_native_password. Returns the server conn (keep a reference to it!), or
--       nil and a message when the connection cannot even be started. When the login
--       succeeded it calls callback(server_conn, nil); when it failed callback(nil,
--       message) (the server's error message, or "DPML: Connection closed
--       unexpectedly"), and the connection is closed. The callback runs at most once.
--       dpml watches the login with a package overlay and leaves the conn's own
--       callbacks alone; a MY_CLOSING of your own registered before the callback ran
--       takes precedence over dpml's, so a close during the login then reaches yours
--       instead of the callback.
--
--   dpml.dump_table(t [, indent])
--       Debug printer: one line per key, "<type> <key>: <value>", nested tables as
--       "table <key>" followed by their content one tab further in.

local dpm = dpm
local pairs, ipairs, type, tostring, error, print = pairs, ipairs, type, tostring, error, print
local setmetatable, pcall, next = setmetatable, pcall, next
local table, string, io = table, string, io
local unpack = table.unpack or unpack
local maxn = table.maxn or function(t)
    local n = 0
    for k in pairs(t) do
        if type(k) == "number" and k > n then
            n = k
        end
    end
    return n
end

local M = {}

-- The object type of a dpm userdata ("cmd", "ok", "eof", "err", "conn", ...), from the
-- "dpm.<type>: 0x..." that tostring() gives.
local function kind(obj)
    if type(obj) ~= "userdata" then
        return nil
    end
    return string.match(tostring(obj), "^dpm%.([%w_]+)")
end

-- Whether `obj` is a connection object.
local function is_conn(obj)
    if type(obj) ~= "userdata" then
        return false
    end
    local ok, id = pcall(function()
        return obj:id()
    end)
    return ok and type(id) == "number"
end

-- Tiny helper routine for mass-setting callbacks.
function M.register_callbacks(obj, t)
    for state, fn in pairs(t) do
        obj:register(state, fn)
    end
end

-- Sends a complete result set to the connection.
function M.send_resultset(conn, t)
    local fields = t.fields or {}
    local rows = t.rows or {}
    local nfields = maxn(fields)
    local rset = dpm.new_rset_pkt()
    rset:field_count(nfields)
    dpm.wire_packet(conn, rset)
    for i = 1, nfields do
        local f = fields[i] or {}
        local field = dpm.new_field_pkt()
        local name = f.name ~= nil and tostring(f.name) or ""
        if f.type ~= nil then
            field:name(name, f.type)
        else
            field:name(name)
        end
        rset:add_field(field)
        dpm.wire_packet(conn, field)
    end
    dpm.wire_packet(conn, dpm.new_eof_pkt())
    local row = dpm.new_row_pkt()
    for i = 1, maxn(rows) do
        local values = rows[i]
        if values ~= nil then
            rset:pack_row(row, unpack(values, 1, nfields))
            dpm.wire_packet(conn, row)
        end
    end
    dpm.wire_packet(conn, dpm.new_eof_pkt())
end

function M.send_error(conn, sqlstate, errnum, message)
    local err = dpm.new_err_pkt()
    err:sqlstate(sqlstate)
    err:errnum(errnum)
    err:message(message)
    dpm.wire_packet(conn, err)
end

--
-- Buffered side queries.
--

-- Per server id: {id, cmd, cb, result, current, rset}. `servers` maps the id to the
-- conn object weakly, to notice servers that closed while dpml could not see it.
local queries = {}
local servers = setmetatable({}, { __mode = "v" })

local function conn_alive(conn)
    if conn == nil then
        return false
    end
    local ok, alive = pcall(function()
        return conn:alive()
    end)
    return not ok or alive
end

local function lost_connection_err()
    local err = dpm.new_err_pkt()
    err:errnum(2013)
    err:sqlstate("HY000")
    err:message("Lost connection to server during query")
    return err
end

-- Ends the query of server `id`: removes the overlay and the state, then calls the
-- caller's callback with (result, err).
local function eqb_finish(id, result, err)
    local q = queries[id]
    if q == nil then
        return
    end
    queries[id] = nil
    local server = servers[id]
    if server ~= nil and conn_alive(server) then
        server:package_register(nil)
    end
    servers[id] = nil
    -- An error in the caller's callback must not make dpm forward the packet being
    -- handled (the side query's last one) to a linked client: it is logged here.
    local ok, problem = pcall(q.cb, id, q.cmd, result, err)
    if not ok then
        io.stderr:write("ERROR: dpml.execute_query_buffered callback: " .. tostring(problem) .. "\n")
    end
end

-- Drops the state of servers that closed without dpml seeing their MY_CLOSING (the
-- conn's own MY_CLOSING callback always wins over a package's).
local function eqb_sweep()
    local gone = {}
    for id in pairs(queries) do
        local server = servers[id]
        if server == nil or not conn_alive(server) then
            gone[#gone + 1] = id
        end
    end
    for _, id in ipairs(gone) do
        eqb_finish(id, nil, lost_connection_err())
    end
end

-- While queries run, a timer looks for servers that closed unnoticed (a conn's own
-- MY_CLOSING callback takes precedence over the package's) every 100 ms.
local watchdog = nil
local function eqb_watch()
    if watchdog ~= nil or dpm.new_timer == nil then
        return
    end
    watchdog = dpm.new_timer()
    watchdog:schedule(0, 100, function(timer)
        eqb_sweep()
        if next(queries) == nil then
            timer:cancel()
            watchdog = nil
        end
    end, nil)
end

local function new_resultset()
    return { fields = {}, rows = {} }
end

local function eqb_rset(rset, id)
    local q = queries[id]
    if q then
        q.rset = rset
    end
    return dpm.DPM_NOPROXY
end

local function eqb_field(field, id)
    local q = queries[id]
    if q and type(field) == "userdata" then
        local name, ftype = field:name()
        local set = q.current
        set.fields[#set.fields + 1] = { name = name, type = ftype }
        if q.rset then
            q.rset:add_field(field)
        end
    end
    return dpm.DPM_NOPROXY
end

local function eqb_swallow()
    return dpm.DPM_NOPROXY
end

local function eqb_row(row, id)
    local q = queries[id]
    if q and q.rset and type(row) == "userdata" then
        local set = q.current
        set.rows[#set.rows + 1] = q.rset:parse_row_array(row)
    end
    return dpm.DPM_NOPROXY
end

-- Copies what an OK packet says onto the result set table.
local function note_ok(set, pkt)
    if kind(pkt) == "ok" then
        set.affected_rows = pkt:affected_rows()
        set.insert_id = pkt:insert_id()
        set.warning_count = pkt:warning_count()
    elseif kind(pkt) == "eof" then
        set.warning_count = pkt:warning_count()
    end
end

-- One result of a multi-result ended; another follows.
local function eqb_more(pkt, id)
    local q = queries[id]
    if q then
        note_ok(q.current, pkt)
        local set = new_resultset()
        q.result.more = q.result.more or {}
        q.result.more[#q.result.more + 1] = set
        q.current = set
        q.rset = nil
    end
    return dpm.DPM_NOPROXY
end

local function eqb_done(pkt, id)
    local q = queries[id]
    if q then
        note_ok(q.current, pkt)
        eqb_finish(id, q.result, nil)
    end
    return dpm.DPM_NOPROXY
end

local function eqb_err(err, id)
    if queries[id] then
        eqb_finish(id, nil, err)
    end
    return dpm.DPM_NOPROXY
end

-- LOAD DATA LOCAL in a side query: decline by sending the empty packet that ends the
-- file's data.
local function eqb_infile(pkt, id)
    local server = servers[id]
    if server ~= nil then
        dpm.wire_packet(server, dpm.new_row_pkt())
    end
    return dpm.DPM_NOPROXY
end

local function eqb_closing(id)
    if queries[id] then
        eqb_finish(id, nil, lost_connection_err())
    end
end

-- Every handler swallows its packet, even when it fails (a failing callback counts as
-- DPM_OK, which would forward the packet to a linked client).
local function swallowing(fn)
    return function(pkt, id)
        local ok, problem = pcall(fn, pkt, id)
        if not ok then
            io.stderr:write("ERROR: dpml.execute_query_buffered: " .. tostring(problem) .. "\n")
        end
        return dpm.DPM_NOPROXY
    end
end

local eqb_callbacks = dpm.new_callback()
M.register_callbacks(eqb_callbacks, {
    [dpm.MYS_SENT_RSET] = swallowing(eqb_rset),
    [dpm.MYS_SENDING_FIELDS] = swallowing(eqb_field),
    [dpm.MYS_SENT_FIELDS] = eqb_swallow,
    [dpm.MYS_SENDING_ROWS] = swallowing(eqb_row),
    [dpm.MYS_WAIT_CMD] = swallowing(eqb_done),
    [dpm.MYS_RECV_ERR] = swallowing(eqb_err),
    [dpm.MY_CLOSING] = eqb_closing,
})
-- States of modern servers, where this dpm has them.
local optional = {
    MYS_MORE_RESULTS = swallowing(eqb_more),
    MYS_PROGRESS = eqb_swallow,
    MYS_INFILE_REQUEST = swallowing(eqb_infile),
    -- A dpm.cmd query may be a COM_STMT_PREPARE.
    MYS_SENT_PREPARE_OK = eqb_swallow,
    MYS_SENDING_PARAMS = eqb_swallow,
    MYS_SENT_PARAMS = eqb_swallow,
}
for name, fn in pairs(optional) do
    if dpm[name] then
        eqb_callbacks:register(dpm[name], fn)
    end
end

function M.execute_query_buffered(server, query, cb)
    local cmd
    if type(query) == "string" then
        cmd = dpm.new_cmd_pkt()
        cmd:command(dpm.COM_QUERY)
        cmd:argument(query)
    elseif kind(query) == "cmd" then
        cmd = query
    else
        error("DPML: Query must be string or cmd packet", 2)
    end
    if not is_conn(server) then
        error("DPML: Server must be a connection object", 2)
    end
    if type(cb) ~= "function" then
        error("DPML: Callback must be a function", 2)
    end
    eqb_sweep()
    local id = server:id()
    if queries[id] then
        error("DPML: A buffered query is already running on connection " .. id, 2)
    end
    local result = new_resultset()
    queries[id] = { cmd = cmd, cb = cb, result = result, current = result }
    servers[id] = server
    server:package_register(eqb_callbacks)
    local ok, err = pcall(dpm.wire_packet, server, cmd)
    if not ok then
        server:package_register(nil)
        queries[id] = nil
        servers[id] = nil
        error(err, 2)
    end
    eqb_watch()
    return cmd
end

--
-- Logging in to a server.
--

-- Per server id: {conn, dsn}, until the login finished one way or the other.
local logins = {}

-- Ends a login: forgets it, lets go of the conn's callbacks and tells the caller.
local function cms_finish(id, server, err)
    local login = logins[id]
    if login == nil then
        return
    end
    logins[id] = nil
    local conn = login.conn
    if conn_alive(conn) then
        conn:package_register(nil)
        if server == nil then
            dpm.close(conn)
        end
    end
    local callback = login.dsn.callback
    if callback then
        callback(server, err)
    end
end

-- The server closed (or could not be reached) before the login finished.
local function cms_server_closed(id)
    cms_finish(id, nil, "DPML: Connection closed unexpectedly")
end

local function cms_server_ready(ok, id)
    local login = logins[id]
    if login then
        cms_finish(id, login.conn, nil)
    end
    return dpm.DPM_NOPROXY
end

local function cms_server_err(err, id)
    if logins[id] then
        local message = type(err) == "userdata" and err:message() or "DPML: Login failed"
        cms_finish(id, nil, message)
    end
    return dpm.DPM_NOPROXY
end

-- The server's greeting: answer with the login.
local function cms_server_handshake(hs, id)
    local login = logins[id]
    if login == nil then
        return dpm.DPM_NOPROXY
    end
    if kind(hs) == "err" then
        -- Refused before any greeting ("Too many connections", "Host is blocked", ...).
        return cms_server_err(hs, id)
    end
    local dsn = login.dsn
    local auth = dpm.new_auth_pkt()
    auth:user(dsn.user)
    if dsn.db then
        auth:databasename(dsn.db)
    end
    if dsn.pass then
        dpm.crypt_pass(auth, hs, dsn.pass)
    end
    dpm.wire_packet(login.conn, auth)
    return dpm.DPM_NOPROXY
end

-- The server wants another authentication method than mysql_native_password.
local function cms_server_auth_switch(pkt, id)
    if logins[id] then
        cms_finish(id, nil, "DPML: The server asked for another authentication method; "
            .. "dpml logs in with mysql_native_password only")
    end
    return dpm.DPM_NOPROXY
end

-- MY_CLOSING is watched through the package, not as the conn's own callback: the conn
-- is returned to the caller, whose own MY_CLOSING must not be removed by dpml.
local connect_mysql_server_callbacks = dpm.new_callback()
M.register_callbacks(connect_mysql_server_callbacks, {
    [dpm.MYS_WAIT_AUTH] = cms_server_handshake,
    [dpm.MYS_WAIT_CMD] = cms_server_ready,
    [dpm.MYS_RECV_ERR] = cms_server_err,
    [dpm.MY_CLOSING] = cms_server_closed,
})
for _, name in ipairs({ "MYS_AUTH_SWITCH", "MYS_AUTH_MORE_DATA" }) do
    if dpm[name] then
        connect_mysql_server_callbacks:register(dpm[name], cms_server_auth_switch)
    end
end

function M.connect_mysql_server(t)
    if type(t) ~= "table" then
        error("DPML: connect_mysql_server takes a table", 2)
    end
    if t.user == nil then
        error("DPML: connect_mysql_server needs a user", 2)
    end
    for id, login in pairs(logins) do
        if not conn_alive(login.conn) then
            logins[id] = nil -- closed while a MY_CLOSING of the caller's own was in charge
        end
    end
    local server, why
    if t.path then
        server, why = dpm.connect_unix(t.path)
    else
        server, why = dpm.connect(t.host or "127.0.0.1", t.port or 3306)
    end
    if server == nil then
        local message = "DPML: Could not establish connection"
        if why then
            message = message .. ": " .. tostring(why)
        end
        if t.callback then
            t.callback(nil, message)
        end
        return nil, message
    end
    logins[server:id()] = { conn = server, dsn = t }
    server:package_register(connect_mysql_server_callbacks)
    return server
end

--
-- Debugging.
--

local function dump(t, indent, seen)
    local pad = string.rep("\t", indent)
    seen[t] = true
    for k, v in pairs(t) do
        if type(v) == "table" then
            print(pad .. "table " .. tostring(k))
            if seen[v] then
                print(pad .. "\t(already shown)")
            else
                dump(v, indent + 1, seen)
            end
        else
            print(pad .. type(v) .. " " .. tostring(k) .. ": " .. tostring(v))
        end
    end
end

function M.dump_table(t, indent)
    dump(t, indent or 0, {})
end

-- Like the original's module(...): the library is also the global `dpml`.
dpml = M
return M
