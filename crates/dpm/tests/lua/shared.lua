-- State shared by the workers: every client's "SELECT 'hit'" adds to one process-wide
-- counter, marks its worker in a shared map and a shared ACL; "SELECT 'shared'" is
-- rewritten to return what this worker's Lua state sees of that shared state.
local common = require "common"
common.passthrough(tonumber(os.getenv("DPM_LISTEN_PORT")), function(client, backend)
    client:register(dpm.MYC_SENT_CMD, function(cmd)
        local sql = cmd:argument()
        local worker = dpm.stats().worker
        if sql == "SELECT 'hit'" then
            core.add_counter("hits")
            core.set_map("seen_by", "worker " .. worker, true)
            core.add_acl("workers", tostring(worker))
        elseif sql == "SELECT 'shared'" then
            local seen = 0
            for _, v in pairs(core.map_entries("seen_by")) do
                if v == true then seen = seen + 1 end
            end
            local both = core.match_acl("workers", "0") and core.match_acl("workers", "1")
            cmd:argument(string.format("SELECT %d, %d, %d, '%s', %d", core.get_counter("hits"),
                worker, seen, tostring(both), dpm.stats().total.workers))
            dpm.wire_packet(backend, cmd)
            return dpm.DPM_NOPROXY
        end
    end)
end)
