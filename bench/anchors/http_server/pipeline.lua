-- TechEmpower-style pipelining: each write carries `depth` requests
-- (wrk ... -s pipeline.lua URL -- 16)
init = function(args)
  local r = {}
  for i = 1, tonumber(args[1] or 16) do r[i] = wrk.format() end
  req = table.concat(r)
end
request = function() return req end
