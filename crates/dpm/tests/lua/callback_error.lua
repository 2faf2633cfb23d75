-- Test startfile: passthrough whose MYC_SENT_CMD callback raises for one query.
local conns = {}
local function on_command(cmd, id)
    if cmd:argument() == "SELECT 'boom'" then
        error("kaboom on purpose") -- line 5: the test expects this position in the log
    end
end
local function on_closing(id)
    local conn = conns[id]
    conns[id] = nil
    if conn and conns[conn:remote_id()] then dpm.close(conns[conn:remote_id()]) end
end
local listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
conns[listener:id()] = listener
listener:register(dpm.MYC_CONNECT, function(client)
    local backend = dpm.connect("127.0.0.1", tonumber(os.getenv("DPM_BACKEND_PORT")))
    conns[client:id()], conns[backend:id()] = client, backend
    client:register(dpm.MYC_SENT_CMD, on_command)
    client:register(dpm.MY_CLOSING, on_closing)
    backend:register(dpm.MY_CLOSING, on_closing)
    dpm.proxy_connect(client, backend)
end)
