-- W0: GET /health/live, the framework's floor.
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

wrk.method = "GET"
wrk.path = "/health/live"
