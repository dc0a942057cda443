-- POST {"token": ...} to the URL's path, every single-use token sent at most once: /api/verify
-- (sign-up tokens) or /api/contact/confirm (contact tokens); the body is the same shape.
--   wrk ... -s bench/lua/confirm.lua URL -- TOKEN_FILE THREADS [once|wrap] [GET_PREFIX [COOKIE]]
-- With GET_PREFIX it sends GET GET_PREFIX..token instead, with COOKIE as its Cookie header if given:
-- the classic Flask tutorial's confirm link (GET /confirm/<token>, behind a login).
-- Each wrk thread takes a disjoint slice of the file (line k goes to thread k % THREADS).
-- "once": when a thread's slice runs out it sends a token that was never issued (same length),
-- which the server refuses with 400, so running short shows up as errors, never as repeats.
-- "wrap": starts the slice again; only for the bare ceiling server, which checks nothing.
-- Counters the done() hook reads from each thread must be globals.
built = 0
exhausted = 0
unexpected = 0

local threads = {}
local tokens = {}
local size = 0
local wrap = false
local headers = { ["Content-Type"] = "application/json" }
local unknown = string.rep("A", 43)
local get_prefix = nil

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = args[1]
  local nthreads = tonumber(args[2])
  wrap = args[3] == "wrap"
  get_prefix = args[4]
  if args[5] ~= nil then
    headers = { ["Cookie"] = args[5] }
  end
  if file == nil or nthreads == nil then
    error("usage: -- TOKEN_FILE THREADS [once|wrap]")
  end
  local k = 0
  for line in io.lines(file) do
    if k % nthreads == tid and #line > 0 then
      size = size + 1
      tokens[size] = line
    end
    k = k + 1
  end
  if size == 0 then
    error("no tokens for thread " .. tid .. " in " .. file)
  end
end

function request()
  built = built + 1
  local token
  if built <= size then
    token = tokens[built]
  elseif wrap then
    token = tokens[(built - 1) % size + 1]
  else
    exhausted = exhausted + 1
    token = unknown
  end
  if get_prefix ~= nil then
    return wrk.format("GET", get_prefix .. token, headers)
  end
  -- A nil path is the URL's path (wrk.path).
  return wrk.format("POST", nil, headers, '{"token":"' .. token .. '"}')
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
