-- W2: POST /api/v1/orders with BENCH_LINES (1, 5, 20) lines. Success is 201.
--   BENCH_LINES     lines per order
--   BENCH_PRODUCTS  see orders.lua
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench/lua") .. "/?.lua;" .. package.path
local common = require("common")
local orders = require("orders")

setup = common.setup
done = common.done

local lines

function init(args)
  orders.init()
  lines = tonumber(common.env("BENCH_LINES", "5"))
end

function request()
  return orders.request(lines)
end
