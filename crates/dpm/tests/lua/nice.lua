-- core.set_nice (crates/dpm/tests/it/lua_runtime.rs): on one worker, three tasks count
-- their turns for 300 ms, each giving way with core.yield(): one at nice 0, one at nice
-- 1024 (it steps back 9 times per yield), one at nice -1024 (acts as 0). Then prints the
-- counts; and a task shows that an out-of-range nice is refused.

local counts = { normal = 0, nice = 0, negative = 0 }
local stop = false

local function spin(name, nice)
    return function()
        if nice then core.set_nice(nice) end
        while not stop do
            counts[name] = counts[name] + 1
            core.yield()
        end
    end
end

core.register_task(spin("normal"))
core.register_task(spin("nice", 1024))
core.register_task(spin("negative", -1024))
core.register_task(function()
    core.msleep(300)
    stop = true
    print(("nice counts: normal=%d nice=%d negative=%d"):format(counts.normal, counts.nice, counts.negative))
    local ok, err = pcall(core.set_nice, 2000)
    print("out of range: " .. tostring(ok) .. " " .. err)
end)
