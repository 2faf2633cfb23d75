-- a hook that fails
client_socket(function(fd, addr)
    setsockopt(fd, "SO_NOSUCH", 1)
end)
workload(function(conn) conn:query("SELECT 1") end)
