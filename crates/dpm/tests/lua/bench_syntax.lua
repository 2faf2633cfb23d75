local t = {}
workload(function(conn)
end
