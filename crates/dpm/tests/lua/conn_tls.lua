-- conn:tls() (crates/dpm/tests/it/authmatrix.rs): a passthrough listener on
-- DPM_LISTEN_PORT that offers TLS (DPM_TLS_CERT, DPM_TLS_KEY) in front of
-- DPM_BACKEND_PORT, with TLS to it too when DPM_BACKEND_CA is set. At each query a
-- client sends, prints
--   conn_tls <the query> client=<version> <cipher> backend=<version> <cipher>
-- ("nil nil" where dpm terminates no TLS on that connection).
local common = require "common"
local tls = { cert = os.getenv("DPM_TLS_CERT"), key = os.getenv("DPM_TLS_KEY") }
local backend_options = nil
if os.getenv("DPM_BACKEND_CA") then
    backend_options = { tls = { ca = os.getenv("DPM_BACKEND_CA") } }
end
local function describe(conn)
    local version, cipher = conn:tls()
    return tostring(version) .. " " .. tostring(cipher)
end
common.passthrough(tonumber(os.getenv("DPM_LISTEN_PORT")), function(client, backend)
    client:register(dpm.MYC_SENT_CMD, function(cmd, cid)
        if cmd:command() == dpm.COM_QUERY then
            print(string.format("conn_tls %s client=%s backend=%s", cmd:argument(), describe(client), describe(backend)))
        end
    end)
end, { tls = tls }, backend_options)
