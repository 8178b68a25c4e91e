-- W5: POST /api/v1/orders/{id}/items with two lines of distinct products (names from the seeded
-- menu, random two-decimal prices, small quantities), each request as the order's own waiter.
-- Each thread rotates over its share of the open orders (every BENCH_THREADS-th), so that one
-- order gets its requests one after another, spread over the run. Success is 200; an order
-- past its 100 live lines would answer 409 (an error): the runner makes orders enough.
--   BENCH_ADD_ORDERS  file, one open order per line: "<order id> <n>", where n (from 1) is the
--                     line of BENCH_TOKENS with its waiter's token
--   BENCH_TOKENS      see common.lua (every thread reads them all: each order names its own)
--   BENCH_PRODUCTS    file, one product name per line (distinct products, at least 2)
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

local next_order, names
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  common.seed_random()
  local tokens = common.read_lines(common.env("BENCH_TOKENS"))
  names = common.read_lines(common.env("BENCH_PRODUCTS"))
  if #names < 2 then error("BENCH_PRODUCTS needs at least 2 products") end
  local threads = tonumber(common.env("BENCH_THREADS", "1"))
  local id = thread_id or 0
  local mine = {}
  for i, line in ipairs(common.read_lines(common.env("BENCH_ADD_ORDERS"))) do
    if (i - 1) % threads == id then
      local order, n = line:match("^(%S+)%s+(%d+)$")
      local token = n and tokens[tonumber(n)]
      if not token then error("BENCH_ADD_ORDERS line " .. i .. " names no order and token: " .. line) end
      mine[#mine + 1] = { "/api/v1/orders/" .. order .. "/items", "Bearer " .. token }
    end
  end
  if #mine == 0 then error("BENCH_ADD_ORDERS has no order for thread " .. id) end
  next_order = common.rotator(mine)
end

local function line(name)
  local cents = math.random(120, 3500)
  return '{"product_name":' .. common.json_string(name) ..
    string.format(',"unit_price":"%d.%02d","quantity":%d}', math.floor(cents / 100), cents % 100, math.random(1, 3))
end

function request()
  local order = next_order()
  local a = math.random(#names)
  local b = math.random(#names - 1)
  if b >= a then b = b + 1 end
  headers["Authorization"] = order[2]
  return wrk.format("POST", order[1], headers, '{"items":[' .. line(names[a]) .. "," .. line(names[b]) .. "]}")
end
