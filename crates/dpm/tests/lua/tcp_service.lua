-- A raw TCP service (crates/dpm/tests/it/lua_runtime_tcp.rs): dpm.listener(..., { mode =
-- "tcp" }) on DPM_TCP_PORT, a line protocol exercising the txn and channel classes:
--   slow MS     core.msleep(MS), then "slept MS"
--   echo TEXT   "TEXT"
--   peek        dup then get of the rest of the request: "dup=N get=N same=true"
--   lengths     the request's input length (after "lengths\n", the client sent more
--               in the same write), then the response's lengths around set, append
--               and forward, and what send on the request channel returns
--   count       how many lines this connection sent (kept with set_priv/get_priv)
--   bye         appends "bye" and finishes: the client gets it, then the end
--   drop        appends text and closes: the client gets nothing more
--   fail        raises an error (logged; the connection closes)
--   spin        loops until the sandbox's CPU budget stops it
-- A client that closes ends the loop: get_line returns nil.

dpm.limits{ callback_instructions = 2000000 }

local port = tonumber(os.getenv("DPM_TCP_PORT"))
local service = assert(dpm.listener("127.0.0.1", port, { mode = "tcp" }))
assert(service:port() == port and service:alive())

service:register_action(function(txn)
    local req, res = txn:req_channel(), txn:res_channel()
    assert(txn:get_req_buf() ~= nil and txn:get_res_buf() ~= nil)
    assert(txn:get_priv() == nil)
    txn:set_priv({ lines = 0 })
    while true do
        local line = req:get_line()
        if line == nil then return end
        local private = txn:get_priv()
        private.lines = private.lines + 1
        local command, argument = line:match("^(%S+)%s*(.-)\r?\n$")
        if command == "slow" then
            core.msleep(tonumber(argument))
            res:send("slept " .. argument .. "\n")
        elseif command == "echo" then
            res:send(argument .. "\n")
        elseif command == "peek" then
            local copy = req:dup()
            local taken = req:get()
            res:send(("dup=%d get=%d same=%s\n"):format(#copy, #taken, tostring(copy == taken)))
        elseif command == "lengths" then
            local waiting = req:get_in_length()
            req:forward(waiting)                  -- consumed: no server behind
            local after = req:get_in_length()
            res:set("this is replaced")
            res:set("abc")
            local appended = res:append("def\n")
            local before = res:get_in_length()
            local moved = res:forward(3)          -- "abc" goes to the client now
            res:send(("| in=%d after=%d appended=%d res_in=%d moved=%d res_in=%d req_send=%d\n")
                :format(waiting, after, appended, before, moved, res:get_in_length(), req:send("x")))
            -- "def\n" waits in the response's input: written when the action ends.
        elseif command == "count" then
            res:send("lines=" .. private.lines .. "\n")
        elseif command == "bye" then
            res:append("bye\n")
            txn:finish()
            error("not reached: finish ends the action")
        elseif command == "drop" then
            res:append("never sent\n")
            txn:close()
            error("not reached: close ends the action")
        elseif command == "fail" then
            error("failing on purpose")
        elseif command == "spin" then
            while true do end
        else
            res:send("unknown command\n")
        end
    end
end)
