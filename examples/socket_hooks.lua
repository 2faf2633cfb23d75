-- socket_hooks.lua: neper's socket hooks in the proxy — tune and observe every socket
-- dpm opens, from Lua. It runs examples/passthrough.lua (same environment variables)
-- with five hooks, each `fn(fd, addr)` (`addr`: family, host, port — or path):
--
--   listener_socket  each listening socket, before its bind: a larger receive buffer,
--                    which the clients it accepts inherit
--   client_socket    each client, as accepted (before its greeting): TCP keepalive after
--                    60 s idle, a probe every 10 s, 5 probes
--   server_socket    each backend socket, before its connect (TCP_INFO's state is still
--                    7, closed): binding options would go here
--   client_close,    each connection as dpm starts closing it (the descriptor is still
--   server_close     open): its TCP_INFO — smoothed round-trip time, retransmissions
--
-- Register hooks before the listeners they are to see (here: before `dofile`). A hook
-- runs to completion (it cannot sleep); an error in it is logged with its file:line and
-- the connection goes on — DPM_HOOK_FAIL=1 makes the client hook fail to show it.
--
--   DPM_BACKEND_PORT=3306 dpm --startfile examples/socket_hooks.lua

local function where(addr)
    if addr.family == "unix" then
        return addr.path
    end
    return addr.host .. ":" .. addr.port
end

dpm.listener_socket(function(fd, addr)
    dpm.setsockopt(fd, "SO_RCVBUF", 262144)
    -- Linux reports twice what was asked (its bookkeeping overhead).
    print(("listener_socket %s rcvbuf=%d"):format(where(addr), dpm.getsockopt(fd, "SO_RCVBUF")))
end)

dpm.client_socket(function(fd, addr)
    if os.getenv("DPM_HOOK_FAIL") then
        error("a failing client hook")
    end
    dpm.setsockopt(fd, "SO_KEEPALIVE", true)
    dpm.setsockopt(fd, "TCP_KEEPIDLE", 60)
    dpm.setsockopt(fd, "TCP_KEEPINTVL", 10)
    dpm.setsockopt(fd, "TCP_KEEPCNT", 5)
    print(("client_socket from %s keepalive=%s idle=%d rcvbuf=%d"):format(
        where(addr),
        tostring(dpm.getsockopt(fd, "SO_KEEPALIVE")),
        dpm.getsockopt(fd, "TCP_KEEPIDLE"),
        dpm.getsockopt(fd, "SO_RCVBUF")
    ))
end)

dpm.server_socket(function(fd, addr)
    print(("server_socket to %s state=%d nodelay=%s"):format(
        where(addr),
        dpm.getsockopt(fd, "TCP_INFO").state,
        tostring(dpm.getsockopt(fd, "TCP_NODELAY"))
    ))
end)

local function report(kind)
    return function(fd, addr)
        local info = dpm.getsockopt(fd, "TCP_INFO")
        print(("%s %s rtt_us=%d retransmits=%d"):format(kind, where(addr), info.rtt, info.total_retrans))
    end
end
dpm.client_close(report("client_close"))
dpm.server_close(report("server_close"))

dofile((dpm.startfile:gsub("[^/]*$", "")) .. "passthrough.lua")
