-- A filter that fails in two ways (a Lua error, a return value that is no action), and
-- one declared never to yield that yields.
local faulty = dpm.filter{
    name = "faulty",
    route_query = function(session, query)
        local sql = query:sql() or ""
        if sql:find("boom") then
            error("boom requested")
        elseif sql:find("number") then
            return 42
        end
    end,
}
-- Declared never to yield, yet it sleeps on 'sleepy': that is an error, not a hang.
local sync = dpm.filter{
    name = "sync",
    yields = false,
    route_query = function(session, query)
        if (query:sql() or ""):find("sleepy") then
            core.msleep(1)
        end
    end,
}
local db = dpm.server{ name = "db", address = os.getenv("DPM_BACKEND") }
svc = dpm.service{ name = "faulty_service", router = "readconnroute", servers = { db }, filters = { faulty, sync } }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(svc)
