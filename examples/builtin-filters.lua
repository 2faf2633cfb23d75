-- builtin-filters.lua: one readconnroute service with the built-in filters in a chain:
-- rewrite (regex), query log (qla), the slowest statements per session (top), firewall,
-- and a mirror of every write to a second server (tee). The log and top come before the
-- firewall so that they record denied statements too; the tee after it, so that denied
-- statements are not mirrored.
--
--   DPM_LISTEN_PORT      port to listen on                     (default 4006)
--   DPM_BACKEND          the server, host:port                 (default 127.0.0.1:3306)
--   DPM_MIRROR           the mirror server, host:port          (default 127.0.0.1:3307)
--   DPM_MIRROR_USER      the user the mirror logs in as        (default dpm)
--   DPM_MIRROR_PASSWORD  its password                          (default empty)
--   DPM_LOG_DIR          where the logs go                     (default /tmp)
--   DPM_RULES_FILE       the firewall's rule file   (default builtin-filters.rules beside this file)
--
--   dpm --startfile examples/builtin-filters.lua
--   mariadb -h127.0.0.1 -P4006 -u<user> -p -e 'SELECT 1'
--   tail -f /tmp/dpm-queries.log /tmp/dpm-top.log
--   kill -HUP <dpm pid>     # after logrotate moved the logs: reopen them, reload rules

local listen_port = tonumber(os.getenv("DPM_LISTEN_PORT") or "4006")
local log_dir = os.getenv("DPM_LOG_DIR") or "/tmp"

local db = dpm.server{ name = "db", address = os.getenv("DPM_BACKEND") or "127.0.0.1:3306" }
local spare = dpm.server{ name = "spare", address = os.getenv("DPM_MIRROR") or "127.0.0.1:3307" }

-- The service writes are mirrored to (not served by any listener).
mirror = dpm.service{ name = "mirror", router = "readconnroute", servers = { spare } }

-- Old table names still work: statements are rewritten before anything else sees them.
local rewrite = dpm.filter{
    name = "rewrite", module = "regex",
    options = { rules = {
        { match = [[(?i)\blegacy_orders\b]], replace = "orders" },
        { match = [[(?i)\bSQL_NO_CACHE\b\s*]], replace = "" },
    } },
}

-- Denies DROP/TRUNCATE, UPDATE/DELETE without WHERE, the secret schema and night-time
-- DDL (examples/builtin-filters.rules) and long sleeps (a rule given as a Lua table).
-- A denied statement gets ERROR 1141 naming the rule and never reaches the server.
local here = dpm.startfile:match("^(.*)/[^/]*$") or "."
local firewall = dpm.filter{
    name = "firewall", module = "firewall",
    options = {
        action = "block",
        rules_file = os.getenv("DPM_RULES_FILE") or here .. "/builtin-filters.rules",
        rules = { { name = "no_sleep_long", regex = [=[(?i)\bSLEEP\s*\(\s*[1-9]]=] } },
    },
}

-- Every statement as one JSON line (denied ones too, with their error): who, where, how long, how many rows, which error.
local log = dpm.filter{
    name = "log", module = "qla",
    options = { file = log_dir .. "/dpm-queries.log", exclude = [[(?i)^\s*(SELECT\s+@@|SHOW\s)]] },
}

-- When a session closes: its ten slowest statements and its totals.
local top = dpm.filter{
    name = "top", module = "top",
    options = { file = log_dir .. "/dpm-top.log", count = 10 },
}

-- Writes (and schema changes) also go to the mirror; its replies are discarded, and a
-- slow or dead mirror never slows the clients (bounded queue per session, reconnects).
local tee = dpm.filter{
    name = "tee", module = "tee",
    options = {
        target = "mirror",
        mirror_user = os.getenv("DPM_MIRROR_USER") or "dpm",
        mirror_password = os.getenv("DPM_MIRROR_PASSWORD") or "",
        match = [[(?i)^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|ALTER|DROP|USE)\b]],
    },
}

app = dpm.service{
    name = "app", router = "readconnroute", servers = { db },
    filters = { rewrite, log, top, firewall, tee },
}

-- Keep the listener referenced: dpm closes a connection whose object is collected.
listener = assert(dpm.listener("127.0.0.1", listen_port))
listener:serve(app)
