-- bench/lua/passthrough-tls.lua: examples/passthrough.lua with TLS terminated on both
-- sides. The listener offers TLS with dpm's certificate and requires it (a plain client
-- gets ERR 3159, so a benchmark client that silently stayed plain fails loudly); every
-- client gets its own backend connection, over TLS verified against the CA (certificate
-- chain and the name, i.e. the backend's IP address). dpm decrypts on one side and
-- re-encrypts on the other; the server still checks the password.
-- bench/run (target dpm-tls) and bench/connrate measure it against plain passthrough and
-- against the server's own TLS.
--
-- Environment: as examples/passthrough.lua (DPM_LISTEN_HOST/PORT, DPM_BACKEND_HOST/PORT), plus
--   DPM_TLS_CERT, DPM_TLS_KEY   the listener's certificate chain and key (PEM), required
--   DPM_TLS_CA                  the CA that signed the backend's certificate (PEM), required

local listen_host = os.getenv("DPM_LISTEN_HOST") or "127.0.0.1"
local listen_port = tonumber(os.getenv("DPM_LISTEN_PORT") or "5500")
local backend_host = os.getenv("DPM_BACKEND_HOST") or "127.0.0.1"
local backend_port = tonumber(os.getenv("DPM_BACKEND_PORT") or "3306")
local function required(name)
    return os.getenv(name) or error(name .. " is not set (see bench/lua/passthrough-tls.lua)")
end
local listener_tls = { cert = required("DPM_TLS_CERT"), key = required("DPM_TLS_KEY"), require = true }
local backend_opts = { tls = { ca = required("DPM_TLS_CA") } }

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
    local backend, err = dpm.connect(backend_host, backend_port, backend_opts)
    if not backend then
        print("cannot connect to the backend: " .. err)
        dpm.close(client)
        return
    end
    conns[client:id()] = client
    conns[backend:id()] = backend
    client:register(dpm.MY_CLOSING, on_closing)
    backend:register(dpm.MY_CLOSING, on_closing)
    dpm.proxy_connect(client, backend)
end

local listener, err = dpm.listener(listen_host, listen_port, { tls = listener_tls })
if not listener then
    error(err)
end
conns[listener:id()] = listener
listener:register(dpm.MYC_CONNECT, on_client_connect)
print(string.format("passthrough-tls: listening on %s:%d (TLS required), backend %s:%d over TLS",
    listen_host, listen_port, backend_host, backend_port))
