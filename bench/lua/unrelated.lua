-- bench/lua/unrelated.lua: examples/passthrough.lua plus callbacks registered only on
-- events that never fire per query in a sysbench workload, on both sides of every pair:
--   MYS_SENDING_STATS  (a COM_STATISTICS answer; sysbench never sends one)
--   MYS_RECV_ERR       (an ERR packet from the server; the benchmark runs without errors)
--   MYS_WAIT_AUTH      (backend: the server's greeting, once per connection)
--   MYC_WAIT_AUTH      (client: the greeting forwarded to it, once per connection)
-- bench/run compares its forwarding throughput with plain passthrough: the per-connection
-- event mask should keep these callbacks off the per-query path entirely.
--
--   DPM_LISTEN_HOST / DPM_LISTEN_PORT    where to listen   (default 127.0.0.1:5500)
--   DPM_BACKEND_HOST / DPM_BACKEND_PORT  the MariaDB       (default 127.0.0.1:3306)

local listen_host = os.getenv("DPM_LISTEN_HOST") or "127.0.0.1"
local listen_port = tonumber(os.getenv("DPM_LISTEN_PORT") or "5500")
local backend_host = os.getenv("DPM_BACKEND_HOST") or "127.0.0.1"
local backend_port = tonumber(os.getenv("DPM_BACKEND_PORT") or "3306")

local conns = {}
local fired = 0

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

-- Never expected per query; counts calls so a debugging session can look.
local function unrelated()
    fired = fired + 1
end

local function on_client_connect(client, listener_id)
    local backend, err = dpm.connect(backend_host, backend_port)
    if not backend then
        print("cannot connect to the backend: " .. err)
        dpm.close(client)
        return
    end
    conns[client:id()] = client
    conns[backend:id()] = backend
    client:register(dpm.MY_CLOSING, on_closing)
    backend:register(dpm.MY_CLOSING, on_closing)
    for _, conn in ipairs({ client, backend }) do
        conn:register(dpm.MYS_SENDING_STATS, unrelated)
        conn:register(dpm.MYS_RECV_ERR, unrelated)
    end
    backend:register(dpm.MYS_WAIT_AUTH, unrelated)
    client:register(dpm.MYC_WAIT_AUTH, unrelated)
    dpm.proxy_connect(client, backend)
end

local listener, err = dpm.listener(listen_host, listen_port)
if not listener then
    error(err)
end
conns[listener:id()] = listener
listener:register(dpm.MYC_CONNECT, on_client_connect)
print(string.format("unrelated: listening on %s:%d, backend %s:%d",
    listen_host, listen_port, backend_host, backend_port))
