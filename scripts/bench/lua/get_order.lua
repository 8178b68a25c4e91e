-- GET /api/v1/orders/{id} of existing orders (random), tokens round-robin.
--   BENCH_ORDER_IDS  file, one order id per line
--   BENCH_DELAY_MS   optional: each connection waits this long after a response before its
--                    next request (W1b's fixed, moderate rate: connections / (latency + delay))
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

local ids, next_token

function init(args)
  common.seed_random()
  ids = common.read_lines(common.env("BENCH_ORDER_IDS"))
  next_token = common.rotator(common.thread_tokens())
end

function request()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/api/v1/orders/" .. id, { ["Authorization"] = "Bearer " .. next_token() })
end

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end
