-- bench/lua/sent-cmd.lua: examples/passthrough.lua plus a MYC_SENT_CMD callback on every
-- client that reads the command's argument (the SQL text of a COM_QUERY) and forwards it.
-- bench/run measures what this costs per query against plain passthrough.
--
--   DPM_LISTEN_HOST / DPM_LISTEN_PORT    where to listen   (default 127.0.0.1:5500)
--   DPM_BACKEND_HOST / DPM_BACKEND_PORT  the MariaDB       (default 127.0.0.1:3306)

local listen_host = os.getenv("DPM_LISTEN_HOST") or "127.0.0.1"
local listen_port = tonumber(os.getenv("DPM_LISTEN_PORT") or "5500")
local backend_host = os.getenv("DPM_BACKEND_HOST") or "127.0.0.1"
local backend_port = tonumber(os.getenv("DPM_BACKEND_PORT") or "3306")

-- Connection objects must stay referenced (dpm closes a collected one); keyed by id.
local conns = {}

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

-- Runs once per command the client sends. Reading the argument copies the SQL text into
-- a Lua string; returning nothing means DPM_OK: the command goes on to the backend.
local function on_sent_cmd(cmd)
    local q = cmd:argument()
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
    client:register(dpm.MYC_SENT_CMD, on_sent_cmd)
    dpm.proxy_connect(client, backend)
end

local listener, err = dpm.listener(listen_host, listen_port)
if not listener then
    error(err)
end
conns[listener:id()] = listener
listener:register(dpm.MYC_CONNECT, on_client_connect)
print(string.format("sent-cmd: listening on %s:%d, backend %s:%d",
    listen_host, listen_port, backend_host, backend_port))
