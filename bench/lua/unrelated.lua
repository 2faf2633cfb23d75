-- bench/lua/unrelated.lua: examples/passthrough.lua plus callbacks registered only on
-- events that never fire per query in a sysbench workload, on both sides of every pair:
--   MYS_SENDING_STATS  (a COM_STATISTICS answer; sysbench never sends one)
--   MYS_RECV_ERR       (an ERR packet from the server; the benchmark runs without errors)
--   MYS_WAIT_AUTH      (backend: the server's greeting, once per connection)
--   MYC_WAIT_AUTH      (client: the greeting forwarded to it, once per connection)
-- bench/run compares its forwarding throughput with plain passthrough: the per-connection
-- event mask should keep these callbacks off the per-query path entirely.
--
-- Environment: as examples/passthrough.lua (DPM_LISTEN_*, DPM_BACKEND_*).

local fired = 0

-- Never expected per query; counts calls so a debugging session can look.
local function unrelated()
    fired = fired + 1
end

function passthrough_setup(client, backend)
    for _, conn in ipairs({ client, backend }) do
        conn:register(dpm.MYS_SENDING_STATS, unrelated)
        conn:register(dpm.MYS_RECV_ERR, unrelated)
    end
    backend:register(dpm.MYS_WAIT_AUTH, unrelated)
    client:register(dpm.MYC_WAIT_AUTH, unrelated)
end

local here = dpm.startfile:match("^(.*)/[^/]*$") or "."
dofile(here .. "/../../examples/passthrough.lua")
