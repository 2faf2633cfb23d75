-- TLS and proxy-held users (crates/dpm/tests/it/authmatrix.rs): two readconnroute
-- services in front of one server, each served by up to two listeners.
--
--   service "pass": pass-through (the server checks every login)
--   service "held": proxy-held users (dpm checks them, then logs in with mapped accounts)
--
-- Every setting comes from the environment:
--   DPM_BACKEND               host:port of the server
--   DPM_BACKEND_CA            set: dpm talks TLS to the server, verifying it against this CA
--   DPM_BACKEND_TLS_NAME      the name dpm checks in the server's certificate (default: host)
--   DPM_BACKEND_USER/_PASSWORD the server's account for users without their own (app_native)
--   DPM_PASS_PLAIN_PORT, DPM_PASS_TLS_PORT, DPM_HELD_PLAIN_PORT, DPM_HELD_TLS_PORT
--                             listeners of each service (each optional); the *_TLS_PORT
--                             ones offer TLS with DPM_TLS_CERT and DPM_TLS_KEY
--   DPM_SERVICE_TLS=1         the TLS settings go on both services instead (so every
--                             listener offers TLS)
--   DPM_TLS_REQUIRE=1         require = true in the TLS settings
--   DPM_LISTEN_MAX            max_connections of the DPM_HELD_PLAIN_PORT listener
--   DPM_NATIVE_HASH, DPM_SHA2_HASH, DPM_ED_HASH   password_hash of the proxy-held users
--   DPM_SHA2_BACKEND_USER/_PASSWORD, DPM_ED_BACKEND_USER/_PASSWORD   their mapped accounts
--   DPM_BAD_BACKEND_PASSWORD  the (wrong) backend password of user app_badbackend
--   DPM_LIMITED_MAX           max_connections of user app_limited (default 1)
--   DPM_RSA_KEY               rsa_private_key (else dpm generates a key pair when needed)
--   DPM_THROTTLE              "failures,window,delay" for dpm.login_throttle (default: off)
--
-- Proxy-held users (all of service "held"):
--   app_native      mysql_native_password  DPM_NATIVE_HASH  -> the server's account
--   app_sha2        caching_sha2_password  DPM_SHA2_HASH    -> DPM_SHA2_BACKEND_USER
--   app_ed          client_ed25519         DPM_ED_HASH      -> DPM_ED_BACKEND_USER
--   app_limited     mysql_native_password  DPM_NATIVE_HASH, max_connections DPM_LIMITED_MAX
--   app_badbackend  mysql_native_password  DPM_NATIVE_HASH  -> DPM_BACKEND_USER with
--                                                             DPM_BAD_BACKEND_PASSWORD
--
-- A statement `DPM DIAGNOSTICS` is answered by dpm (a Lua filter) with one row: the
-- services' diagnostics and dpm.servers(), as JSON-ish text.

local encode = require("common").encode
local env = os.getenv

local function port(name)
    local v = env(name)
    return v and tonumber(v)
end

local tls = nil
if env("DPM_TLS_CERT") then
    tls = { cert = env("DPM_TLS_CERT"), key = env("DPM_TLS_KEY"), require = env("DPM_TLS_REQUIRE") == "1" }
end
local service_tls = env("DPM_SERVICE_TLS") == "1" and tls or nil

local server_tls = nil
if env("DPM_BACKEND_CA") then
    server_tls = { ca = env("DPM_BACKEND_CA"), server_name = env("DPM_BACKEND_TLS_NAME") }
end
local db = dpm.server{
    name = "db",
    address = env("DPM_BACKEND"),
    tls = server_tls,
    backend_user = env("DPM_BACKEND_USER"),
    backend_password = env("DPM_BACKEND_PASSWORD"),
}

-- One probe filter per service (a filter belongs to one service).
local function probe(name)
    return dpm.filter{
        name = "probe_" .. name,
        route_query = function(session, query)
            if query:sql() == "DPM DIAGNOSTICS" then
                local d = { pass = pass:diagnostics(), held = held:diagnostics(), servers = dpm.servers() }
                return { columns = { "json" }, rows = { { encode(d) } } }
            end
        end,
    }
end

pass = dpm.service{ name = "pass", router = "readconnroute", servers = { db }, filters = { probe("pass") }, tls = service_tls }
held = dpm.service{ name = "held", router = "readconnroute", servers = { db }, filters = { probe("held") }, tls = service_tls }

local function backend(prefix)
    local user = env(prefix .. "_USER")
    if user then
        return user, env(prefix .. "_PASSWORD")
    end
end
local sha2_user, sha2_password = backend("DPM_SHA2_BACKEND")
local ed_user, ed_password = backend("DPM_ED_BACKEND")
dpm.users{
    { user = "app_native", password_hash = env("DPM_NATIVE_HASH"), service = held },
    { user = "app_sha2", plugin = "caching_sha2_password", password_hash = env("DPM_SHA2_HASH"),
      service = "held", backend_user = sha2_user, backend_password = sha2_password },
    { user = "app_ed", plugin = "client_ed25519", password_hash = env("DPM_ED_HASH"),
      service = held, backend_user = ed_user, backend_password = ed_password },
    { user = "app_limited", plugin = "mysql_native_password", password_hash = env("DPM_NATIVE_HASH"),
      service = held, max_connections = tonumber(env("DPM_LIMITED_MAX") or "1") },
    { user = "app_badbackend", password_hash = env("DPM_NATIVE_HASH"), service = held,
      backend_user = env("DPM_BACKEND_USER"), backend_password = env("DPM_BAD_BACKEND_PASSWORD") or "not the password" },
    rsa_private_key = env("DPM_RSA_KEY"),
}

local throttle = env("DPM_THROTTLE")
if throttle then
    local failures, window, delay = throttle:match("^(%d+),(%d+),([%d.]+)$")
    dpm.login_throttle{ failures = tonumber(failures), window = tonumber(window), delay = tonumber(delay) }
else
    dpm.login_throttle{ failures = 0 }
end

listeners = {} -- referenced, or they would be closed when collected
local function listen(port_var, service, options)
    local p = port(port_var)
    if p then
        local l = assert(dpm.listener("127.0.0.1", p, options))
        l:serve(service)
        listeners[#listeners + 1] = l
        print(string.format("authmatrix: %s on port %d serves %s", port_var, p, service:name()))
    end
end
local listen_max = port("DPM_LISTEN_MAX")
listen("DPM_PASS_PLAIN_PORT", pass)
listen("DPM_PASS_TLS_PORT", pass, { tls = tls })
listen("DPM_HELD_PLAIN_PORT", held, { max_connections = listen_max })
listen("DPM_HELD_TLS_PORT", held, { tls = tls })
