-- A firewall from the rule file DPM_RULES (mode DPM_FW_ACTION) and an admin filter in
-- front of it: `RELOAD FIREWALL` answers with what app:reload_filters() returned, and
-- `FIREWALL STATS` with the firewall's diagnostics, `LAST REPLY` with what the admin
-- filter saw of the last reply (crates/dpm/tests/it/builtin_filters.rs).
local last = {}
local db = dpm.server{ name = "db", address = os.getenv("DPM_BACKEND") }
local firewall = dpm.filter{
    name = "fw", module = "firewall",
    options = {
        action = os.getenv("DPM_FW_ACTION") or "block",
        rules_file = os.getenv("DPM_RULES"),
        rules = { { name = "lua_reads", type = "select|show|set" } },
    },
}
local admin = dpm.filter{
    name = "admin",
    route_query = function(session, query)
        local sql = query:sql()
        if sql == "RELOAD FIREWALL" then
            local ok, err = app:reload_filters()
            return { columns = { "ok", "error" }, rows = { { tostring(ok), err } } }
        elseif sql == "LAST REPLY" then
            return { columns = { "server", "error_code", "duration_us" },
                     rows = { { last.server, last.error_code, last.duration_us } } }
        elseif sql == "FIREWALL STATS" then
            local d = app:diagnostics().filters[2].diagnostics
            return { columns = { "rules", "allowed", "denied", "reloads", "failed_reloads" },
                     rows = { { d.rules, d.allowed, d.denied, d.reloads, d.failed_reloads } } }
        end
    end,
    client_reply = function(session, reply)
        last = { server = reply.server, error_code = reply.error_code, duration_us = reply.duration_us }
    end,
}
app = dpm.service{ name = "app", router = "readconnroute", servers = { db }, filters = { admin, firewall } }
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("DPM_LISTEN_PORT"))))
listener:serve(app)
-- The admin API too (crates/dpm/tests/it/admin.rs: POST /v1/filters/reload).
if os.getenv("DPM_ADMIN_PORT") then dpm.admin{ listen = "127.0.0.1:" .. os.getenv("DPM_ADMIN_PORT") } end
