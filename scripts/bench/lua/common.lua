-- Shared by the wrk scripts of scripts/bench/run.sh: file and environment helpers, per-thread
-- numbering, token rotation, and the machine-readable RESULT line printed at the end.
--
-- The runner passes everything through the environment (wrk's Lua can read files):
--   BENCH_THREADS  the -t given to wrk (to split tokens between threads)
--   BENCH_TOKENS   file, one bearer token per line (seeded waiters)
-- and script-specific variables documented in each script.

local M = {}

function M.env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then error("environment variable " .. name .. " is not set") end
    return default
  end
  return v
end

function M.read_lines(path)
  local f, err = io.open(path, "r")
  if not f then error("cannot open " .. path .. ": " .. tostring(err)) end
  local out = {}
  for line in f:lines() do
    line = line:gsub("\r$", "")
    if line ~= "" then out[#out + 1] = line end
  end
  f:close()
  if #out == 0 then error(path .. " is empty") end
  return out
end

-- JSON string escaping (names come from the database; be safe anyway).
function M.json_string(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end

-- setup() runs in wrk's main Lua state once per thread, before that thread's init().
local threads = {}
local next_id = 0
function M.setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

-- The tokens of this thread: every BENCH_THREADS-th token starting at its own index, so
-- the threads use disjoint sets of waiters and each thread rotates over several of them.
-- A thread that would get none (more threads than tokens) shares them all.
function M.thread_tokens()
  local all = M.read_lines(M.env("BENCH_TOKENS"))
  local n = tonumber(M.env("BENCH_THREADS", "1"))
  local id = thread_id or 0
  local mine = {}
  for i = 1, #all do
    if (i - 1) % n == id then mine[#mine + 1] = all[i] end
  end
  if #mine == 0 then mine = all end
  return mine
end

function M.seed_random()
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919 + math.floor((os.clock() * 1e6) % 1000))
  for _ = 1, 10 do math.random() end
end

-- A round-robin iterator over a list.
function M.rotator(list)
  local i = 0
  return function()
    i = i % #list + 1
    return list[i]
  end
end

-- One line the runner parses. wrk counts responses with status > 399 in errors.status;
-- 2xx (200, 201) and 3xx count as successes. Latencies are in microseconds.
function M.done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  local function ms(us) return us / 1000.0 end
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.2f ok_rps=%.2f mean_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f " ..
    "p999_ms=%.3f max_ms=%.3f errors=%d non2xx=%d connect=%d read=%d write=%d timeout=%d bytes=%d\n",
    summary.requests, secs, summary.requests / secs, (summary.requests - e.status) / secs,
    ms(latency.mean), ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
    ms(latency:percentile(99.9)), ms(latency.max), errors, e.status, e.connect, e.read, e.write, e.timeout,
    summary.bytes))
end

return M
