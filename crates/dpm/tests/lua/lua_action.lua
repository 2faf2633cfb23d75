-- An action in a service's chain (crates/dpm/tests/it/services_lua_action.rs):
-- core.register_action("audit", fn) and "lua.audit" in the service's filters. For each
-- statement, by its SQL:
--   SELECT 'hello'         answered from Lua: res:send → a one-column result set
--   SELECT 'count'         answers how many statements this session sent (set_priv/get_priv)
--   SELECT 'rewrite'       the request's SQL replaced: SELECT 'rewritten'
--   SELECT 'append'        appended to: SELECT 'append', 'more'
--   FINISH ME              txn:finish() with nothing to say: an OK (the server, which
--                          would refuse this SQL, never sees it)
--   SELECT 'close'         txn:close(): the session is closed
--   SELECT 'nap'           core.msleep(300) first (only this session waits)
--   SELECT 'fail'          an error: the client gets ERR 1105 naming the action
--   anything else          goes on unchanged
dpm.limits{ callback_instructions = 2000000 }

core.register_action("audit", function(txn)
    local req, res = txn:req_channel(), txn:res_channel()
    txn:set_priv((txn:get_priv() or 0) + 1)
    local sql = req:dup() or ""
    assert(req:get_in_length() == #sql)
    if sql == "SELECT 'hello'" then
        res:send("hello from Lua")
    elseif sql == "SELECT 'count'" then
        res:send("statements=" .. txn:get_priv())
    elseif sql == "SELECT 'rewrite'" then
        req:set("SELECT 'rewritten'")
    elseif sql == "SELECT 'append'" then
        req:forward(req:get_in_length())     -- the statement's SQL stays the statement
        req:append(", 'more'")
    elseif sql == "FINISH ME" then
        txn:finish()
        error("not reached: finish ends the action")
    elseif sql == "SELECT 'close'" then
        txn:close()
        error("not reached: close ends the action")
    elseif sql == "SELECT 'nap'" then
        core.msleep(300)
    elseif sql == "SELECT 'fail'" then
        error("failing on purpose")
    end
end)

local db = dpm.server{ name = "db", address = "127.0.0.1:" .. os.getenv("DPM_BACKEND_PORT") }
svc = dpm.service{ name = "acted", router = "readconnroute", servers = { db }, filters = { "lua.audit" } }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(svc)
