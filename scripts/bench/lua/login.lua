-- W1: the login storm. Each request logs one seeded waiter in (round-robin), so every request
-- costs one Argon2id verification at the server's parameters.
--   BENCH_EMAILS    file, one email per line
--   BENCH_PASSWORD  their password
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

local bodies = {}
local next_body

function init(args)
  local emails = common.read_lines(common.env("BENCH_EMAILS"))
  local password = common.env("BENCH_PASSWORD")
  local n = tonumber(common.env("BENCH_THREADS", "1"))
  local id = thread_id or 0
  -- Start each thread at a different waiter.
  for i = 1, #emails do
    local email = emails[(i - 1 + id * 7) % #emails + 1]
    bodies[#bodies + 1] = '{"email":' .. common.json_string(email) .. ',"password":' ..
      common.json_string(password) .. '}'
  end
  next_body = common.rotator(bodies)
end

local headers = { ["Content-Type"] = "application/json" }

function request()
  return wrk.format("POST", "/api/v1/auth/login", headers, next_body())
end
