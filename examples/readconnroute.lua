-- readconnroute.lua: a service of two servers routed by readconnroute.
--
-- Each client session goes to the server with the fewest sessions among those of the
-- role given by router_options (primary, replica, or running = any server that is up);
-- all its statements follow. A server that refuses connections is skipped and retried
-- later; when none can take the session the client gets an error naming the service
-- and the servers tried. Clients log in with their own credentials (pass-through).
--
--   DPM_LISTEN_PORT   port to listen on                      (default 4006)
--   DPM_PRIMARY       the primary, host:port                 (default 127.0.0.1:3306)
--   DPM_REPLICA       a replica of it, host:port             (default 127.0.0.1:3307)
--   DPM_ROUTE_TO      router_options: primary|replica|running (default replica)
--
--   dpm --startfile examples/readconnroute.lua
--   mariadb -h127.0.0.1 -P4006 -u<user> -p -e 'SELECT @@port'

local listen_port = tonumber(os.getenv("DPM_LISTEN_PORT") or "4006")

local db1 = dpm.server{ name = "db1", address = os.getenv("DPM_PRIMARY") or "127.0.0.1:3306", role = "primary" }
local db2 = dpm.server{ name = "db2", address = os.getenv("DPM_REPLICA") or "127.0.0.1:3307", role = "replica" }

app = dpm.service{
    name = "app",
    router = "readconnroute",
    servers = { db1, db2 },
    options = { router_options = os.getenv("DPM_ROUTE_TO") or "replica" },
}

-- Keep the listener referenced: dpm closes a connection whose object is collected.
listener = assert(dpm.listener("127.0.0.1", listen_port))
listener:serve(app)
