-- demo-autoexplain.lua: 1:1 pass-through that logs the EXPLAIN of every SELECT (does not
-- use dpml).
--
-- Each connecting client gets a dedicated backend connection; the real server
-- authenticates. When a client sends a query starting with "SELECT " (any case), the
-- proxy first runs "EXPLAIN <query>" on the client's backend with a package callback
-- object overlaid on it, which swallows the EXPLAIN's result (the client never sees it)
-- and prints it:
--
--   EXPLAIN:
--    id: 1
--    select_type: SIMPLE
--    ...
--
-- one " column: value" line per non-NULL column, sorted by column name. Then the
-- overlay is removed and the original query is sent; its result flows to the client.
-- If the EXPLAIN fails, its error is printed (not sent to the client) and the original
-- query runs all the same. The held-back query is kept per backend, so clients do not
-- disturb each other. A client's backend is closed when the client goes away.
--
-- Environment (all optional):
--   DPM_LISTEN_HOST / DPM_LISTEN_PORT     where to listen    (127.0.0.1:5500)
--   DPM_BACKEND_HOST / DPM_BACKEND_PORT   the MySQL server   (127.0.0.1:3306)
--
--   dpm --startfile lua/demo-autoexplain.lua
--   mariadb -h127.0.0.1 -P5500 -u<real user> -p<real password> -e 'SELECT 1'

LISTEN_HOST  = os.getenv("DPM_LISTEN_HOST") or "127.0.0.1"
LISTEN_PORT  = tonumber(os.getenv("DPM_LISTEN_PORT") or "5500")
BACKEND_HOST = os.getenv("DPM_BACKEND_HOST") or "127.0.0.1"
BACKEND_PORT = tonumber(os.getenv("DPM_BACKEND_PORT") or "3306")

conns    = {}                 -- every conn by id (a collected conn is closed)
rsets    = {}                 -- backend id -> the EXPLAIN's result-set header
squirrel = {}                 -- backend id -> the client's held-back SELECT
callback = dpm.new_callback() -- the "autoexplain" package, overlaid during an EXPLAIN

-- Client just got lost. (The original left its backend open, leaking it when the client
-- went away without QUIT; it is closed here, which prints "Backend died".)
function client_closing(cid)
    print "Client connection died."
    local client = conns[cid]
    conns[cid] = nil
    -- remote_id still names the partner after a close.
    local backend = client and conns[client:remote_id()]
    if backend then dpm.close(backend) end
end

function backend_death(sid)
    print "Backend died"
    conns[sid] = nil
    rsets[sid] = nil
    squirrel[sid] = nil
end

function new_backend()
    local backend, err = dpm.connect(BACKEND_HOST, BACKEND_PORT)
    if backend then
        backend:register(dpm.MY_CLOSING, backend_death)
    end
    return backend, err
end

function new_client(c)
    conns[c:id()] = c -- Prevent client from being garbage collected
    c:register(dpm.MYC_SENT_CMD, new_command)
    c:register(dpm.MY_CLOSING, client_closing)

    -- Init a backend just for this connection.
    local backend, err = new_backend()
    if not backend then
        print("Could not connect to the backend: " .. tostring(err))
        dpm.close(c)
        return dpm.DPM_NOPROXY
    end
    conns[backend:id()] = backend

    -- Connect the backend to the client (and never disconnect later).
    dpm.proxy_connect(c, backend)
    return dpm.DPM_NOPROXY
end

-- The argument as printed: binary payloads (prepared statements) have their control
-- bytes shown as '.'.
local function printable(argument)
    return (string.gsub(argument, "[%z\1-\8\11\12\14-\31\127]", "."))
end

function new_command(cmd_pkt, cid)
    local arg = cmd_pkt:argument() or ""
    print("Proxying command: " .. printable(arg) .. " : " .. cmd_pkt:command())

    if cmd_pkt:command() == dpm.COM_QUERY and string.upper(string.sub(arg, 1, 7)) == "SELECT " then
        local client = conns[cid]
        local backend = conns[client:remote_id()]
        if backend == nil then return end

        -- We have a query to analyze: swap in the callback object prepared below,
        -- prepend EXPLAIN to the query and run that first.
        local explain = dpm.new_cmd_pkt()
        explain:command(dpm.COM_QUERY)
        explain:argument("EXPLAIN " .. arg)
        squirrel[backend:id()] = cmd_pkt
        rsets[backend:id()] = nil
        backend:package_register(callback)
        dpm.wire_packet(backend, explain)
        return dpm.DPM_NOPROXY
    end
end

function b_rset(rset_pkt, sid)
    rsets[sid] = rset_pkt
    return dpm.DPM_NOPROXY
end

function b_fields(field_pkt, sid)
    local rset = rsets[sid]
    if rset then rset:add_field(field_pkt) end
    return dpm.DPM_NOPROXY
end

function b_rows(row_pkt, sid)
    local rset = rsets[sid]
    if rset == nil then return dpm.DPM_NOPROXY end
    local rowdata = rset:parse_row_table(row_pkt)
    local names = {}
    for k in pairs(rowdata) do names[#names + 1] = k end
    table.sort(names)
    print("EXPLAIN:")
    for _, k in ipairs(names) do
        print(string.format(" %s: %s", k, rowdata[k]))
    end
    return dpm.DPM_NOPROXY
end

function b_swallow(pkt, sid)
    return dpm.DPM_NOPROXY
end

-- The EXPLAIN is over (fine or not): take the overlay off so the real query's result
-- goes straight through, and send the held-back query.
local function run_original(sid)
    local backend = conns[sid]
    local original = squirrel[sid]
    squirrel[sid] = nil
    rsets[sid] = nil
    if backend == nil then return end
    backend:package_register(nil)
    if original then dpm.wire_packet(backend, original) end
end

function b_finish(pkt, sid)
    run_original(sid)
    return dpm.DPM_NOPROXY
end

function b_error(err_pkt, sid)
    print("EXPLAIN failed: " .. err_pkt:errnum() .. " " .. err_pkt:message())
    run_original(sid)
    return dpm.DPM_NOPROXY
end

-- Set up the listener, register a callback for new clients.
listen = assert(dpm.listener(LISTEN_HOST, LISTEN_PORT))
listen:register(dpm.MYC_CONNECT, new_client)

-- Prepare the "autoexplain" package: swapped in on a backend while an EXPLAIN runs.
-- Every handler returns DPM_NOPROXY: nothing of the EXPLAIN reaches the client.
callback:register(dpm.MYS_SENT_RSET, b_rset)
callback:register(dpm.MYS_SENDING_FIELDS, b_fields)
callback:register(dpm.MYS_SENT_FIELDS, b_swallow)
callback:register(dpm.MYS_SENDING_ROWS, b_rows)
callback:register(dpm.MYS_WAIT_CMD, b_finish)
callback:register(dpm.MYS_RECV_ERR, b_error)
if dpm.MYS_MORE_RESULTS then callback:register(dpm.MYS_MORE_RESULTS, b_swallow) end
if dpm.MYS_PROGRESS then callback:register(dpm.MYS_PROGRESS, b_swallow) end
