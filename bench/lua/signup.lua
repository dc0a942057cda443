-- POST /api/signup with an address no request, thread or run has used before.
--   wrk ... -s bench/lua/signup.lua URL -- RUN_ID
-- RUN_ID is a random prefix from bench/run.ts; each thread adds its own id and a counter.
-- Counters the done() hook reads from each thread must be globals.
built = 0
exhausted = 0
unexpected = 0

local threads = {}
local prefix = ""
local headers = { ["Content-Type"] = "application/json" }
local password = "bench passphrase: correct horse battery staple"

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local run = args[1]
  if run == nil then
    math.randomseed(os.time() + tid)
    run = string.format("%08x", math.random(0, 0x7fffffff))
  end
  prefix = "signup-" .. run .. "-t" .. tid .. "-"
end

function request()
  built = built + 1
  local body = '{"email":"' .. prefix .. built .. '@bench.test","password":"' .. password .. '"}'
  return wrk.format("POST", "/api/signup", headers, body)
end

-- Few enough requests that checking each one costs nothing measurable.
function response(status, headers, body)
  if status ~= 202 then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local b, x, u = 0, 0, 0
  for _, thread in ipairs(threads) do
    b = b + (thread:get("built") or 0)
    x = x + (thread:get("exhausted") or 0)
    u = u + (thread:get("unexpected") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
      '"built":%d,"exhausted":%d,"unexpected":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    b, x, u))
end
