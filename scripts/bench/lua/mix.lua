-- W4: 80% GET /api/v1/orders/{id}, 15% POST /api/v1/orders (BENCH_LINES lines, default 4),
-- 5% GET /api/v1/orders?limit=20 (the first page, newest first).
--   BENCH_ORDER_IDS, BENCH_PRODUCTS, BENCH_LINES
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench/lua") .. "/?.lua;" .. package.path
local common = require("common")
local orders = require("orders")

setup = common.setup
done = common.done

local ids, lines

function init(args)
  orders.init()
  ids = common.read_lines(common.env("BENCH_ORDER_IDS"))
  lines = tonumber(common.env("BENCH_LINES", "4"))
end

function request()
  local r = math.random(100)
  if r <= 80 then
    return wrk.format("GET", "/api/v1/orders/" .. ids[math.random(#ids)],
      { ["Authorization"] = "Bearer " .. orders.token() })
  elseif r <= 95 then
    return orders.request(lines)
  else
    return wrk.format("GET", "/api/v1/orders?limit=20", { ["Authorization"] = "Bearer " .. orders.token() })
  end
end
