-- The admin REST API (docs/admin.md) beside a readconnroute service.
--
--   DPM_BACKEND=127.0.0.1:3306 DPM_LISTEN_PORT=4006 DPM_ADMIN_PORT=8989 \
--   DPM_ADMIN_HASH="$(echo secret | dpm hash-password --plugin caching_sha2_password)" \
--   dpm --startfile examples/admin.lua
--   curl -u admin:secret http://127.0.0.1:8989/v1/sessions
--
-- Without DPM_ADMIN_HASH and DPM_ADMIN_TOKEN the API asks for no credentials, which dpm
-- allows on a loopback address only.
local env = os.getenv
local db1 = dpm.server{ name = "db1", address = env("DPM_BACKEND") or "127.0.0.1:3306" }
local app = dpm.service{ name = "app", router = "readconnroute", servers = { db1 } }
-- A global: a listener nothing refers to is closed when Lua collects it.
listener = assert(dpm.listener("127.0.0.1", tonumber(env("DPM_LISTEN_PORT") or "4006")))
listener:serve(app)

-- Query digests of the service's statements (GET /v1/digests, the top ones in /metrics):
-- the most frequent DPM_DIGEST_CAPACITY (default 10,000) per worker; memory stays flat.
dpm.digests{ capacity = tonumber(env("DPM_DIGEST_CAPACITY") or "10000") }

dpm.admin{
  listen = "127.0.0.1:" .. (env("DPM_ADMIN_PORT") or "8989"),
  users = { admin = env("DPM_ADMIN_HASH") },  -- a caching_sha2_password hash, never a password
  tokens = { env("DPM_ADMIN_TOKEN") },        -- Authorization: Bearer <token>
}
