-- Builds create-order requests: N lines of distinct products (names from the seeded menu),
-- two-decimal prices, small quantities, tokens round-robin. Used by create_order.lua and mix.lua.
--   BENCH_PRODUCTS    file, one product name per line (distinct products)
--   BENCH_MENU_ITEMS  optional file, one menu item id per line: menu lines of those items
--                     instead of open lines (W2m)
local common = require("common")

local M = {}

local names, perm, next_token, menu
local headers = {}

function M.init()
  common.seed_random()
  local items = os.getenv("BENCH_MENU_ITEMS")
  menu = items ~= nil and items ~= ""
  names = common.read_lines(menu and items or common.env("BENCH_PRODUCTS"))
  perm = {}
  for i = 1, #names do perm[i] = i end
  next_token = common.rotator(common.thread_tokens())
end

function M.token()
  return next_token()
end

-- n distinct products: a partial Fisher-Yates shuffle of a persistent permutation.
local function pick(n)
  if n > #perm then n = #perm end
  for i = 1, n do
    local j = math.random(i, #perm)
    perm[i], perm[j] = perm[j], perm[i]
  end
  return n
end

function M.body(lines)
  local n = pick(lines)
  local items = {}
  for i = 1, n do
    if menu then
      items[i] = string.format('{"menu_item_id":"%s","quantity":%d}', names[perm[i]], math.random(1, 3))
    else
      local cents = math.random(120, 3500)
      items[i] = '{"product_name":' .. common.json_string(names[perm[i]]) ..
        string.format(',"unit_price":"%d.%02d","quantity":%d}', math.floor(cents / 100), cents % 100, math.random(1, 3))
    end
  end
  return string.format('{"customer_name":"Table %d","items":[', math.random(1, 60)) ..
    table.concat(items, ",") .. "]}"
end

function M.request(lines)
  headers["Authorization"] = "Bearer " .. next_token()
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", "/api/v1/orders", headers, M.body(lines))
end

return M
