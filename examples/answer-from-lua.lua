-- answer-from-lua.lua: dpm acting as a MySQL server by itself, with no backend at all.
--
-- dpm sends its own handshake, checks the password against a table in this file, and
-- answers every query from Lua:
--   SELECT @@version_comment ...  -> what the mariadb CLI asks for its banner
--   HELLO                         -> a three-row greeting table
--   anything else                 -> one row echoing the query and its length
-- PING, USE db and QUIT are answered too; other commands get an error.
--
--   DPM_LISTEN_HOST (default 127.0.0.1), DPM_LISTEN_PORT (default 5501)
--   dpm --startfile examples/answer-from-lua.lua
--   mariadb -h127.0.0.1 -P5501 -udpm -pdpm -e 'HELLO'

local listen_host = os.getenv("DPM_LISTEN_HOST") or "127.0.0.1"
local listen_port = tonumber(os.getenv("DPM_LISTEN_PORT") or "5501")

-- user -> HEX(SHA1(SHA1(password))), what SELECT PASSWORD('dpm') shows without the '*'.
local users = {
    dpm = "8CE64ABA0405493B2F72B576CD63737B2524F631",
}

local conns = {}       -- connection objects by id (kept so they are not collected)
local handshakes = {}  -- the handshake each client got: check_pass needs its nonce

-- Wires a complete text result set: header, column definitions, EOF, rows, EOF.
local function send_resultset(client, columns, rows)
    local rset = dpm.new_rset_pkt()
    rset:field_count(#columns)
    dpm.wire_packet(client, rset)
    for _, name in ipairs(columns) do
        local field = dpm.new_field_pkt()
        field:name(name, dpm.MYSQL_TYPE_VAR_STRING)
        rset:add_field(field)
        dpm.wire_packet(client, field)
    end
    dpm.wire_packet(client, dpm.new_eof_pkt())
    for _, values in ipairs(rows) do
        local row = dpm.new_row_pkt()
        rset:pack_row(row, table.unpack(values, 1, #columns))
        dpm.wire_packet(client, row)
    end
    local last = dpm.new_eof_pkt()
    last:server_status(dpm.SERVER_STATUS_AUTOCOMMIT, true)
    dpm.wire_packet(client, last)
end

local function send_error(client, errnum, sqlstate, message)
    local err = dpm.new_err_pkt()
    err:errnum(errnum)
    err:sqlstate(sqlstate)
    err:message(message)
    dpm.wire_packet(client, err)
end

local function on_login(auth, id)
    -- MYC_WAITING also fires, with the id only, for every packet sent to the client.
    if type(auth) ~= "userdata" then
        return
    end
    local client = conns[id]
    client:register(dpm.MYC_WAITING, nil)
    local user = auth:user()
    local hash = users[user]
    if hash and dpm.check_pass(auth, handshakes[id], hash) == 0 then
        print("login ok: " .. user)
        dpm.wire_packet(client, dpm.new_ok_pkt())
    else
        print("login refused: " .. user)
        send_error(client, 1045, "28000", "Access denied for user '" .. user .. "'@'dpm'")
    end
    return dpm.DPM_NOPROXY
end

local function answer_query(client, sql)
    if sql:lower():match("^%s*select%s+@@version_comment") then
        send_resultset(client, { "@@version_comment" }, { { "dpm answer-from-lua example" } })
    elseif sql == "HELLO" then
        send_resultset(client, { "salutations", "number" },
            { { "hi", 1 }, { "hello", 2 }, { "konnichiwa", 3 } })
    else
        send_resultset(client, { "you_said", "length" }, { { sql, #sql } })
    end
end

local function on_command(cmd, id)
    local client = conns[id]
    local command = cmd:command()
    if command == dpm.COM_QUERY then
        answer_query(client, cmd:argument())
    elseif command == dpm.COM_PING or command == dpm.COM_INIT_DB then
        dpm.wire_packet(client, dpm.new_ok_pkt())
    elseif command == dpm.COM_QUIT then
        dpm.close(client)
    else
        send_error(client, 1047, "08S01", "Unknown command " .. command)
    end
    return dpm.DPM_NOPROXY
end

local function on_closing(id)
    conns[id] = nil
    handshakes[id] = nil
end

local function on_connect(client)
    local id = client:id()
    conns[id] = client
    client:register(dpm.MYC_WAITING, on_login)
    client:register(dpm.MYC_SENT_CMD, on_command)
    client:register(dpm.MY_CLOSING, on_closing)
    local handshake = dpm.new_handshake_pkt()
    handshake:server_version("5.5.5-dpm-answer-from-lua")
    handshake:thread_id(id)
    handshakes[id] = handshake
    dpm.wire_packet(client, handshake)
end

local listener, err = dpm.listener(listen_host, listen_port)
if not listener then
    error(err)
end
conns[listener:id()] = listener -- keep it referenced, or the garbage collector closes it
listener:register(dpm.MYC_CONNECT, on_connect)
print(string.format("answer-from-lua: listening on %s:%d", listen_host, listen_port))
