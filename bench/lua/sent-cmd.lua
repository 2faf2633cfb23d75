-- bench/lua/sent-cmd.lua: examples/passthrough.lua plus a MYC_SENT_CMD callback on every
-- client that reads the command's argument (the SQL text of a COM_QUERY) and forwards it.
-- bench/run measures what this costs per query against plain passthrough.
-- Environment: as examples/passthrough.lua (DPM_LISTEN_*, DPM_BACKEND_*).

-- Runs once per command the client sends. Reading the argument copies the SQL text into
-- a Lua string; returning nothing means DPM_OK: the command goes on to the backend.
local function on_sent_cmd(cmd)
    local q = cmd:argument()
end

function passthrough_setup(client, backend)
    client:register(dpm.MYC_SENT_CMD, on_sent_cmd)
end

local here = dpm.startfile:match("^(.*)/[^/]*$") or "."
dofile(here .. "/../../examples/passthrough.lua")
