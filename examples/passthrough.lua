-- passthrough.lua: dpm as a transparent MySQL/MariaDB proxy.
--
-- Every client that connects gets its own backend connection; packets flow both ways
-- untouched (the real server does the authentication), and when either side closes
-- the other is closed too.
--
--   DPM_LISTEN_HOST   address to listen on          (default 127.0.0.1)
--   DPM_LISTEN_PORT   port to listen on             (default 5500)
--   DPM_BACKEND_HOST  MariaDB/MySQL server address  (default 127.0.0.1)
--   DPM_BACKEND_PORT  its port                      (default 3306)
--
--   dpm --startfile examples/passthrough.lua --verbose
--   mariadb -h127.0.0.1 -P5500 -u<user> -p
--
-- Another startfile can build on it: define a global function
-- `passthrough_setup(client, backend)` (it may register more callbacks on each new pair),
-- and/or the globals `passthrough_listener_options` and `passthrough_backend_options`
-- (the options tables of `dpm.listener` and `dpm.connect`, e.g. `{ tls = {...} }`), then
-- `dofile` this file (bench/lua/*.lua do so).

local listen_host = os.getenv("DPM_LISTEN_HOST") or "127.0.0.1"
local listen_port = tonumber(os.getenv("DPM_LISTEN_PORT") or "5500")
local backend_host = os.getenv("DPM_BACKEND_HOST") or "127.0.0.1"
local backend_port = tonumber(os.getenv("DPM_BACKEND_PORT") or "3306")

-- Connection objects must stay referenced: dpm closes a connection whose object is
-- garbage-collected. Keyed by connection id.
local conns = {}

-- Either side closing closes its partner (remote_id still names it after the close).
local function on_closing(id)
    local conn = conns[id]
    conns[id] = nil
    if conn then
        local partner = conns[conn:remote_id()]
        if partner then
            dpm.close(partner)
        end
    end
end

local function on_client_connect(client, listener_id)
    local backend, err = dpm.connect(backend_host, backend_port, passthrough_backend_options)
    if not backend then
        print("cannot connect to the backend: " .. err)
        dpm.close(client)
        return
    end
    conns[client:id()] = client
    conns[backend:id()] = backend
    client:register(dpm.MY_CLOSING, on_closing)
    backend:register(dpm.MY_CLOSING, on_closing)
    if passthrough_setup then
        passthrough_setup(client, backend)
    end
    dpm.proxy_connect(client, backend)
end

local listener, err = dpm.listener(listen_host, listen_port, passthrough_listener_options)
if not listener then
    error(err)
end
conns[listener:id()] = listener
listener:register(dpm.MYC_CONNECT, on_client_connect)
print(string.format("passthrough: listening on %s:%d, backend %s:%d",
    listen_host, listen_port, backend_host, backend_port))
