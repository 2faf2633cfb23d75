-- startup.lua: dpm's default demo. The proxy does the authentication itself and all
-- clients share ONE backend connection, lent to a client for one command at a time.
--
--   * Clients log in against the table `passdb` below (user whee, password toast): dpm
--     sends its own handshake (server version 5.0.37) and checks the password.
--   * At start, dpml.connect_mysql_server opens and logs in the shared backend
--     (happy / wheefun). For each command the client is linked to it
--     (dpm.proxy_connect); the backend's final packet of the response is forwarded with
--     DPM_FLUSH_DISCONNECT, which unlinks them again. If the backend dies, a new one is
--     created.
--   * The exact query HELLO is rewritten to SELECT 1 + 1. QUIT is swallowed so that the
--     shared backend survives the client leaving.
--   * A timer prints how many commands went through.
--   * With several workers (--threads N), only the first one runs the demo.
--
-- Compared with the original demo: a command that arrives while there is no backend
-- (before "Backend ready!", or while it is being recreated) gets an error instead of
-- hanging; commands of different clients wait for each other instead of stealing the
-- backend mid-result; commands without a response (COM_STMT_CLOSE, ..._SEND_LONG_DATA)
-- do not keep the backend lent; COM_CHANGE_USER is refused; the client of a command cut
-- short by the backend's death is disconnected; a backend that cannot be recreated
-- after a death is retried every second (at start, the proxy exits, without printing
-- "Backend ready!" first).
--
-- Environment (all optional):
--   DPM_LISTEN_HOST / DPM_LISTEN_PORT          where to listen      (127.0.0.1:5500)
--   DPM_BACKEND_HOST / DPM_BACKEND_PORT        the MySQL server     (127.0.0.1:3306)
--   DPM_BACKEND_USER / DPM_BACKEND_PASSWORD    its account          (happy / wheefun)
--   DPM_STATUS_INTERVAL                        seconds between status lines (45)
--
--   dpm --startfile lua/startup.lua
--   mariadb -h127.0.0.1 -P5500 -uwhee -ptoast -e 'HELLO'

require "dpml"

-- One shared backend, one counter and one timer per process: with several workers
-- (--threads N) this file runs once per worker, and only the first one serves the demo.
-- The others stay idle (they open no listener, so every client reaches the first).
if dpm.stats and dpm.stats().worker ~= 0 then return end

LISTEN_HOST      = os.getenv("DPM_LISTEN_HOST") or "127.0.0.1"
LISTEN_PORT      = tonumber(os.getenv("DPM_LISTEN_PORT") or "5500")
BACKEND_HOST     = os.getenv("DPM_BACKEND_HOST") or "127.0.0.1"
BACKEND_PORT     = tonumber(os.getenv("DPM_BACKEND_PORT") or "3306")
BACKEND_USERNAME = os.getenv("DPM_BACKEND_USER") or "happy"
BACKEND_PASSWORD = os.getenv("DPM_BACKEND_PASSWORD") or "wheefun"
STATUS_INTERVAL  = tonumber(os.getenv("DPM_STATUS_INTERVAL") or "45")

-- How long a command waits for the shared backend to finish another client's command
-- before it gets an error.
BACKEND_WAIT_MS  = 30000

-- user -> HEX(SHA1(SHA1(password))), i.e. SELECT PASSWORD('toast') without the '*'.
passdb   = { ["whee"] = "09A4298405EF045A61DB26DF8811FEA0E44A80FD" }

clients  = {}                -- client conns by id (a collected conn is closed)
storage  = {}                -- the handshake each client got, until its login
bench    = {}                -- client id -> time_hires() when its command started
queries  = { ["count"] = 0 } -- commands seen, QUIT included
backend  = nil               -- the shared, logged-in backend (nil while there is none)
pending  = nil               -- the backend conn being created
lent_to  = nil               -- id of the client whose command the backend runs now
started_once = false         -- whether a backend was ever ready

-- Commands the server does not answer: forwarded and unlinked at once.
local NO_REPLY = {
    [dpm.COM_STMT_CLOSE] = true,
    [dpm.COM_STMT_SEND_LONG_DATA] = true,
}

local function send_error(client, errnum, message)
    dpml.send_error(client, "HY000", errnum, message)
end

function client_ok(cid)
    local client = clients[cid]
    local addr = client:socket_address()
    print("Client ready! id: " .. cid)
    if addr then print("Client IP: " .. addr) end
    client:register(dpm.MYC_SENT_CMD, new_command)
end

-- Client just got lost.
function client_closing(cid)
    print "Client died"
    clients[cid] = nil
    storage[cid] = nil
    bench[cid] = nil
end

function client_got_auth(auth_pkt, cid)
    -- MYC_WAITING also fires, with the id only, after every packet sent to the client.
    if type(auth_pkt) ~= "userdata" then return end
    local client = clients[cid]
    client:register(dpm.MYC_WAITING, nil)
    local hs_pkt = storage[cid]
    storage[cid] = nil
    local user = auth_pkt:user() or ""
    if passdb[user] and dpm.check_pass(auth_pkt, hs_pkt, passdb[user]) == 0 then
        print "Passwords matched!"
        dpm.wire_packet(client, dpm.new_ok_pkt())
        client_ok(cid)
    else
        print "Passwords did NOT match!"
        local err_pkt = dpm.new_err_pkt()
        err_pkt:sqlstate("28000")
        err_pkt:errnum(1045)
        err_pkt:message("Access denied for user '" .. user .. "'@'whatever'")
        dpm.wire_packet(client, err_pkt)
    end
    return dpm.DPM_NOPROXY
end

function new_client(c, lid)
    print("It's a new client! id: " .. c:id() .. " from listener id: " .. lid)
    clients[c:id()] = c -- Prevent the client from being garbage collected
    c:register(dpm.MYC_WAITING, client_got_auth)
    c:register(dpm.MY_CLOSING, client_closing)

    -- check_pass needs the challenge of the handshake this client got.
    local hs_pkt = dpm.new_handshake_pkt()
    dpm.wire_packet(c, hs_pkt)
    storage[c:id()] = hs_pkt
end

-- The argument as printed: binary payloads (prepared statements) have their control
-- bytes shown as '.'.
local function printable(argument)
    return (string.gsub(argument, "[%z\1-\8\11\12\14-\31\127]", "."))
end

-- Waits (suspending only this client's callback) while the backend runs another
-- client's command. Returns false if there is no backend or it stays busy too long.
local function wait_for_backend(cid)
    local deadline = dpm.time_hires() + BACKEND_WAIT_MS
    while backend ~= nil and lent_to ~= nil and lent_to ~= cid do
        if dpm.time_hires() > deadline or clients[cid] == nil then return false end
        core.msleep(1)
    end
    return backend ~= nil
end

function new_command(cmd_pkt, cid)
    local command = cmd_pkt:command()
    local argument = cmd_pkt:argument() or ""
    print("Proxying command: " .. printable(argument) .. " : " .. command)
    -- Start the timer.
    bench[cid] = dpm.time_hires()
    -- Up the counter
    queries["count"] = queries["count"] + 1

    if command == dpm.COM_QUIT then
        -- allow the client to close, but don't close the server.
        return dpm.DPM_NOPROXY
    end
    local client = clients[cid]
    if command == dpm.COM_CHANGE_USER then
        -- The backend is shared: nobody may log it in as someone else.
        send_error(client, 1047, "dpm: COM_CHANGE_USER is not supported by this proxy")
        return dpm.DPM_NOPROXY
    end
    if not wait_for_backend(cid) then
        local why = backend == nil and "is not ready" or "stays busy"
        send_error(client, 1105, "dpm: the shared backend " .. why .. ", try again later")
        return dpm.DPM_NOPROXY
    end
    dpm.proxy_connect(client, backend)
    if NO_REPLY[command] then
        -- No response will come to unlink them: forward, then unlink right away.
        return dpm.DPM_FLUSH_DISCONNECT
    end
    lent_to = cid
    if argument == "HELLO" then
        cmd_pkt:argument("SELECT 1 + 1")
        -- Packet has been rewritten. The backend is attached: wire it.
        dpm.wire_packet(backend, cmd_pkt)
        -- Finally, return requesting to not proxy original packet.
        return dpm.DPM_NOPROXY
    end
end

function finished_command(pkt, sid)
    local started = lent_to and bench[lent_to]
    lent_to = nil
    if started then
        -- Figure out how long it took.
        print("Backend completed command in " .. (dpm.time_hires() - started) .. "ms")
    end
    return dpm.DPM_FLUSH_DISCONNECT
end

local retry_timer = nil

function new_backend(cid)
    print "Creating new backend..."
    -- Overloaded: a non-zero id is that of the backend that just died.
    if cid ~= 0 then
        print "Backend died! Could not authenticate or connect!"
        backend = nil
        -- The command it was running is lost: its client sees the connection drop.
        local victim = lent_to and clients[lent_to]
        lent_to = nil
        if victim then dpm.close(victim) end
    end
    pending = dpml.connect_mysql_server({ host = BACKEND_HOST, port = BACKEND_PORT,
                                          user = BACKEND_USERNAME, pass = BACKEND_PASSWORD,
                                          callback = server_ready,
                                        })
end

function server_ready(server, err)
    pending = nil
    if err then
        print("Error creating backend: " .. err)
        if not started_once then
            os.exit(1)
        end
        -- It worked before: the server may be restarting. Try again in a second.
        if retry_timer == nil then
            retry_timer = dpm.new_timer()
            retry_timer:schedule(1, 0, function(t)
                t:cancel()
                retry_timer = nil
                new_backend(0)
            end, nil)
        end
        return
    end
    print "Backend ready!"
    started_once = true
    backend = server

    dpml.register_callbacks(backend, { [dpm.MYS_WAIT_CMD] = finished_command,
                                       [dpm.MYS_RECV_ERR] = finished_command,
                                       [dpm.MY_CLOSING]   = new_backend,
                                     })
end

-- 'self' is the timer. To stop the timer you can run self:cancel()
function print_status(self, arg)
    print("STATUS UPDATE: I have ran " .. arg["count"] .. " queries.")
end

-- Set up the listener, register a callback for new clients.
listen = assert(dpm.listener(LISTEN_HOST, LISTEN_PORT))
listen:register(dpm.MYC_CONNECT, new_client)
-- Uncomment these lines to also listen on a unix domain socket.
-- listen2 = dpm.listener_unix("/tmp/dpmsock", "0770")
-- listen2:register(dpm.MYC_CONNECT, new_client)

-- Every STATUS_INTERVAL seconds, print the count.
timer = dpm.new_timer()
local interval_ms = math.max(1, math.floor(STATUS_INTERVAL * 1000))
timer:schedule(interval_ms // 1000, interval_ms % 1000, print_status, queries)

-- Fire off the backend.
new_backend(0)
