-- bench/lua/passthrough-tls.lua: examples/passthrough.lua with TLS terminated on both
-- sides. The listener offers TLS with dpm's certificate and requires it (a plain client
-- gets ERR 3159, so a benchmark client that silently stayed plain fails loudly); every
-- client gets its own backend connection, over TLS verified against the CA (certificate
-- chain and the name, i.e. the backend's IP address). dpm decrypts on one side and
-- re-encrypts on the other; the server still checks the password.
-- bench/run (target dpm-tls) and bench/connrate measure it against plain passthrough and
-- against the server's own TLS.
--
-- Environment: as examples/passthrough.lua (DPM_LISTEN_HOST/PORT, DPM_BACKEND_HOST/PORT), plus
--   DPM_TLS_CERT, DPM_TLS_KEY   the listener's certificate chain and key (PEM), required
--   DPM_TLS_CA                  the CA that signed the backend's certificate (PEM), required

local function required(name)
    return os.getenv(name) or error(name .. " is not set (see bench/lua/passthrough-tls.lua)")
end
passthrough_listener_options = {
    tls = { cert = required("DPM_TLS_CERT"), key = required("DPM_TLS_KEY"), require = true },
}
passthrough_backend_options = { tls = { ca = required("DPM_TLS_CA") } }

local here = dpm.startfile:match("^(.*)/[^/]*$") or "."
dofile(here .. "/../../examples/passthrough.lua")
