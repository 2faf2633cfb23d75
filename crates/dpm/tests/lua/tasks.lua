-- Tasks, init functions and core's logging/time/file functions (crates/dpm/tests/it/lua_runtime.rs).
-- Runs on two workers; DPM_MAP_FILE and DPM_ACL_FILE name files the test wrote.
local worker = dpm.stats().worker

core.load_map("tasks_map", os.getenv("DPM_MAP_FILE"))
core.load_acl("tasks_acl", os.getenv("DPM_ACL_FILE"))

core.register_init(function()
    -- Logged, not printed: what init functions print is shown once (worker 0's).
    core.Warning(("init ran on worker %d, map says %s"):format(worker, core.get_map("tasks_map", "db1")))
end)

-- Once per process: only worker 0's registration runs.
core.register_task(function()
    local rounds = 0
    while true do
        rounds = rounds + 1
        if rounds == 3 then
            print(("task once: worker %d, round 3, acl has app=%s, now %s"):format(
                worker, tostring(core.match_acl("tasks_acl", "app")), tostring(core.now().sec > 0)))
        end
        core.msleep(100)
    end
end)

core.register_task(function()
    print(("task per worker: worker %d"):format(worker))
    core.Warning(("a warning from worker %d's task"):format(worker))
end, { per_worker = true })

core.register_task(function()
    core.msleep(20)
    error("a task that fails on purpose")
end)

-- A task started from a running task starts at once, on that worker.
core.register_task(function()
    core.register_task(function()
        print(("task started by a task: worker %d"):format(worker))
    end, { per_worker = true })
end)

dofile((dpm.startfile:gsub("tests/lua/[^/]*$", "")) .. "../../examples/passthrough.lua")
