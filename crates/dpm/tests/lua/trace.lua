-- Registers a callback on every event of every client and backend and prints one line
-- per event: "trace <client|backend> <EVENT_NAME> <object type or id>". Forwarding is
-- untouched (every callback returns nil = DPM_OK).
local common = require "common"
local names = {}
for name, value in pairs(dpm) do
    if type(value) == "number" and (name:match("^MY[CS]_") or name == "MY_CLOSING") then
        names[value] = name
    end
end
common.passthrough(tonumber(os.getenv("DPM_LISTEN_PORT")), function(client, backend)
    for value, name in pairs(names) do
        if value ~= dpm.MYC_CONNECT then
            client:register(value, function(first, id)
                local what = type(first) == "userdata" and tostring(first):match("^([%w%.]+)") or "id"
                print(string.format("trace client %s %s", name, what))
            end)
            backend:register(value, function(first, id)
                local what = type(first) == "userdata" and tostring(first):match("^([%w%.]+)") or "id"
                print(string.format("trace backend %s %s", name, what))
            end)
        end
    end
end)
