-- demo-lib.lua: like demo-direct.lua (1:1 pass-through, the server authenticates), but
-- the query HELLO is answered by the proxy itself with a result set built in Lua
-- (dpml.send_resultset): the server never sees it.
--
-- Environment (all optional):
--   DPM_LISTEN_HOST / DPM_LISTEN_PORT     where to listen    (127.0.0.1:5500)
--   DPM_BACKEND_HOST / DPM_BACKEND_PORT   the MySQL server   (127.0.0.1:3306)
--
--   dpm --startfile lua/demo-lib.lua
--   mariadb -h127.0.0.1 -P5500 -u<real user> -p<real password> -e 'HELLO'

require "dpml"

LISTEN_HOST  = os.getenv("DPM_LISTEN_HOST") or "127.0.0.1"
LISTEN_PORT  = tonumber(os.getenv("DPM_LISTEN_PORT") or "5500")
BACKEND_HOST = os.getenv("DPM_BACKEND_HOST") or "127.0.0.1"
BACKEND_PORT = tonumber(os.getenv("DPM_BACKEND_PORT") or "3306")

-- Every conn by id: a conn that is garbage-collected gets closed.
conns = {}

-- The answer to HELLO.
hello_result = {
    fields = {
        { name = "salutations", type = dpm.MYSQL_TYPE_STRING },
        { name = "number",      type = dpm.MYSQL_TYPE_STRING },
    },
    rows = {
        { "hi",         "1" },
        { "hello",      "2" },
        { "konnichiwa", "3" },
    },
}

-- Client just got lost: close its backend.
function client_closing(cid)
    print "Client died"
    local client = conns[cid]
    conns[cid] = nil
    -- remote_id still names the partner after a close.
    local backend = client and conns[client:remote_id()]
    if backend and dpm.close(backend) then
        print "Successfully closed dead client's backend"
    end
end

-- Backend just got lost: close its client.
function backend_death(sid)
    print "Backend died"
    local backend = conns[sid]
    conns[sid] = nil
    local client = backend and conns[backend:remote_id()]
    if client and dpm.close(client) then
        print "Successfully closed backend's client"
    end
end

function new_backend()
    local backend, err = dpm.connect(BACKEND_HOST, BACKEND_PORT)
    if backend then
        backend:register(dpm.MY_CLOSING, backend_death)
    end
    return backend, err
end

function new_client(c)
    print("New client connecting: " .. c:id())
    conns[c:id()] = c -- Prevent client from being garbage collected
    dpml.register_callbacks(c, { [dpm.MYC_SENT_CMD] = new_command,
                                 [dpm.MY_CLOSING]   = client_closing,
                               })

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
    local argument = cmd_pkt:argument() or ""
    print("Proxying command: " .. printable(argument) .. " : " .. cmd_pkt:command())

    -- If the client sends 'HELLO', answer it from here.
    if cmd_pkt:command() == dpm.COM_QUERY and argument == "HELLO" then
        dpml.send_resultset(conns[cid], hello_result)
        return dpm.DPM_NOPROXY
    end
end

-- Set up the listener, register a callback for new clients.
listen = assert(dpm.listener(LISTEN_HOST, LISTEN_PORT))
listen:register(dpm.MYC_CONNECT, new_client)
