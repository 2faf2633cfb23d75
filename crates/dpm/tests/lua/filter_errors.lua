-- A filter that fails in two ways: a Lua error, and a return value that is no action.
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
local db = dpm.server{ name = "db", address = os.getenv("DPM_BACKEND") }
svc = dpm.service{ name = "faulty_service", router = "readconnroute", servers = { db }, filters = { faulty } }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(svc)
