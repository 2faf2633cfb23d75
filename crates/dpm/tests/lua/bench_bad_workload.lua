local x = 1
workload(function(conn)
  error("boom in the workload")
end)
