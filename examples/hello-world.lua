-- hello-world.lua: the seed's (HAProxy's) Lua "hello world" as a dpm raw TCP service.
--
-- dpm.listener(..., { mode = "tcp" }) accepts connections that do not speak MySQL;
-- the action registered on it serves each one with a txn object (docs/lua-api.md §5.7).
--
--   DPM_LISTEN_HOST (default 127.0.0.1), DPM_LISTEN_PORT (default 10001)
--   dpm --startfile examples/hello-world.lua
--   nc 127.0.0.1 10001        -> hello world

local host = os.getenv("DPM_LISTEN_HOST") or "127.0.0.1"
local port = tonumber(os.getenv("DPM_LISTEN_PORT") or "10001")

function hello_world(txn)
    local res = txn:res_channel()
    res:send("hello world\n")
end

local listener = assert(dpm.listener(host, port, { mode = "tcp" }))
listener:register_action(hello_world)
