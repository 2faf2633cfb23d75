-- proxy-users.lua: a service that holds its users itself and offers TLS to clients.
--
-- Clients log in as the users below, checked by dpm (mysql_native_password, or any
-- plugin a user names: caching_sha2_password, client_ed25519); dpm logs in to the
-- server with the backend account, so clients never know its password. With a
-- certificate, the service offers TLS (clients choose; set require = true to insist).
-- The server keeps up to 10 logged-in connections per worker for the next session
-- (persistpoolmax): a new client then costs the server a COM_RESET_CONNECTION, not a login.
-- Hashes only: `echo -n 'apppass' | dpm hash-password` printed the one below.
--
--   DPM_LISTEN_PORT       port to listen on                                (default 4008)
--   DPM_BACKEND           the server, host:port                            (default 127.0.0.1:3306)
--   DPM_BACKEND_USER      the account dpm logs in with                     (required)
--   DPM_BACKEND_PASSWORD  its password                                     (required)
--   DPM_TLS_CERT, DPM_TLS_KEY  certificate and key offered to clients      (optional)
--
--   DPM_BACKEND_USER=app_rw DPM_BACKEND_PASSWORD=... dpm --startfile examples/proxy-users.lua
--   mariadb -h127.0.0.1 -P4008 -uapp -papppass -e 'SELECT CURRENT_USER()'

local listen_port = tonumber(os.getenv("DPM_LISTEN_PORT") or "4008")

local db = dpm.server{
    name = "db",
    address = os.getenv("DPM_BACKEND") or "127.0.0.1:3306",
    backend_user = assert(os.getenv("DPM_BACKEND_USER"), "set DPM_BACKEND_USER"),
    backend_password = assert(os.getenv("DPM_BACKEND_PASSWORD"), "set DPM_BACKEND_PASSWORD"),
    persistpoolmax = 10,   -- connections kept per worker, reset between sessions
    persistmaxtime = 60,   -- seconds one may wait unused
}

local tls = nil
if os.getenv("DPM_TLS_CERT") then
    tls = { cert = os.getenv("DPM_TLS_CERT"), key = os.getenv("DPM_TLS_KEY") }
end

app = dpm.service{ name = "app", router = "readconnroute", servers = { db },
                   options = { router_options = "running" }, tls = tls }

dpm.users{
    -- password 'apppass'; at most 50 sessions at once
    { user = "app", password_hash = "*90BE3C2682EBF3427EDA20315D6EAB9E31FD1023",
      service = app, max_connections = 50 },
}
-- After 5 wrong passwords from one address within a minute, answer it 2 s late.
dpm.login_throttle{ failures = 5, window = 60, delay = 2 }

-- Keep the listener referenced: dpm closes a connection whose object is collected.
listener = assert(dpm.listener("127.0.0.1", listen_port))
listener:serve(app)
