-- POST /api/contact {"name","email","message"} with a sender address no request, thread or run
-- has used before, and a message of MESSAGE_BYTES bytes (default 300).
--   wrk ... -s bench/lua/contact.lua URL -- RUN_ID [MESSAGE_BYTES]
-- RUN_ID is a random prefix from bench/run.ts, new for every pass; each thread adds its own id
-- and a counter, so the pass's messages can be counted in the database afterwards.
-- No response() hook: at the bare server's rate it would cost wrk enough CPU to lower the
-- ceiling. wrk counts every answer >= 400; bench/run.ts checks the rest in the database.
-- Counters the done() hook reads from each thread must be globals.
built = 0
exhausted = 0
unexpected = 0

local threads = {}
local prefix = ""
local message = ""
local headers = { ["Content-Type"] = "application/json" }
local name = "Bench Sender"

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
  prefix = "contact-" .. run .. "-t" .. tid .. "-"
  local bytes = tonumber(args[2]) or 300
  -- Two paragraphs of plain text (the JSON escape \n\n between them counts as 4 bytes here).
  local text = "Hello, I would like to know more about your service and its pricing. "
  local body = string.rep(text, math.ceil(bytes / #text))
  local half = math.floor(bytes / 2)
  message = string.sub(body, 1, half - 4) .. "\\n\\n" .. string.sub(body, half + 1, bytes)
end

function request()
  built = built + 1
  local body = '{"name":"' .. name .. '","email":"' .. prefix .. built ..
    '@bench.test","message":"' .. message .. '"}'
  return wrk.format("POST", nil, headers, body)
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
