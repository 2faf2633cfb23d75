-- collect.lua: a value per worker, read from every worker at once (neper's `collect`,
-- in the proxy). examples/passthrough.lua (same environment variables) where each worker
-- counts the commands its clients send in a table marked with dpm.collect; once a second
-- worker 0 reads every worker's table with dpm.collected and prints the sum.
--
--   dpm --threads 2 --startfile examples/collect.lua
--   → "commands: 12 in all (worker 0: 7, worker 1: 5)"
--
-- The count is this worker's own plain Lua table: counting costs no lock and no message.
-- dpm.collected asks every worker for a copy of its value and waits for the answers, so
-- it runs where Lua may wait (here a timer; not the startup file's body).

local mine = dpm.collect("commands", { n = 0 })

function passthrough_setup(client, backend)
    client:register(dpm.MYC_SENT_CMD, function()
        mine.n = mine.n + 1
    end)
end

if dpm.stats().worker == 0 then
    local last = -1
    local report = dpm.new_timer()
    report:schedule(1, 0, function()
        local all = dpm.collected("commands")
        local total, parts = 0, {}
        for worker = 0, dpm.stats().total.workers - 1 do
            local n = all[worker] and all[worker].n or 0
            total = total + n
            parts[#parts + 1] = ("worker %d: %d"):format(worker, n)
        end
        if total ~= last then
            print(("commands: %d in all (%s)"):format(total, table.concat(parts, ", ")))
            last = total
        end
    end, nil)
end

dofile((dpm.startfile:gsub("[^/]*$", "")) .. "passthrough.lua")
