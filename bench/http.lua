-- wrk script for bench/http.sh: POSTs JSON bodies read from a file (one a
-- line), each thread cycling through all of them from its own starting
-- point. Requests are formatted once, in init, so wrk spends its time on
-- the connection, not in Lua.
--   wrk ... -s bench/http.lua URL -- BODY_FILE PATH
local requests, i = {}, 0

function init(args)
  local file, path = args[1], args[2]
  for line in io.lines(file) do
    requests[#requests + 1] = wrk.format("POST", path, { ["Content-Type"] = "application/json" }, line)
  end
  if #requests == 0 then
    error("no request bodies in " .. file)
  end
  i = math.random(#requests)
end

function request()
  i = i % #requests + 1
  return requests[i]
end
