-- The sandbox (crates/dpm/tests/it/lua_runtime.rs): passthrough with tight limits and a
-- MYC_SENT_CMD callback that, for
--   SELECT 'spin'  loops forever (stopped by the CPU budget: the client gets an ERR);
--   SELECT 'hog'   grows a table without bound (stopped by the memory limit);
--   SELECT 'nap'   sleeps 50 ms before the statement goes on (only its session waits);
-- and a task that computes in bursts with sleeps in between for longer than the budget
-- in all, and is never stopped.
dpm.limits{ callback_instructions = 2000000, memory_mb = 64 }

local function on_command(cmd)
    if cmd:command() ~= dpm.COM_QUERY then return end
    local q = cmd:argument()
    if q == "SELECT 'spin'" then
        local n = 0
        while true do n = n + 1 end
    elseif q == "SELECT 'hog'" then
        local t = {}
        for i = 1, 1e9 do t[i] = ("x"):rep(1000000) .. i end
    elseif q == "SELECT 'nap'" then
        core.msleep(50)
    end
end

function passthrough_setup(client, backend)
    client:register(dpm.MYC_SENT_CMD, on_command)
end

core.register_task(function()
    -- 40 bursts of ~300,000 instructions: 12 million in all, 6 times the budget.
    for round = 1, 40 do
        local n = 0
        for i = 1, 100000 do n = n + i end
        core.msleep(10)
    end
    print("bursty task done")
end)

dofile((dpm.startfile:gsub("tests/lua/[^/]*$", "")) .. "../../examples/passthrough.lua")
