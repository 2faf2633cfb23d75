-- bench/lua/service-digests.lua: bench/lua/service.lua with query digests on
-- (dpm.digests, the default capacity), to measure what digests cost per statement.
dpm.digests{ capacity = 10000 }
dofile((dpm.startfile:match("^(.*)/[^/]*$") or ".") .. "/service.lua")
