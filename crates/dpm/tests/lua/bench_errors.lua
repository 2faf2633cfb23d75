-- dpm bench test: a query on a missing table fails in every transaction.
workload(function(conn)
    conn:query("SELECT * FROM no_such_table_here")
end)
