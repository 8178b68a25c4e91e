-- W3: GET /api/v1/orders/report over a date range, as the admin.
--   BENCH_ADMIN_TOKEN  the admin's bearer token
--   BENCH_REPORT_PATH  path and query, e.g. /api/v1/orders/report?start_date=...&end_date=...
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

wrk.method = "GET"
wrk.path = common.env("BENCH_REPORT_PATH")
wrk.headers["Authorization"] = "Bearer " .. common.env("BENCH_ADMIN_TOKEN")
wrk.headers["Accept"] = "application/json"
