-- wrk script of bench/webhook.py: POST signed, distinct webhook bodies, and end so that every
-- request sent has been answered and counted (wrk alone drops the requests in flight when its
-- time is up, and the server may still have kept them).
--
--   wrk -t T -c C -d SECONDS+SLACK -s wrk_bodies.lua URL -- BODIES_FILE T SECONDS [wrap]
--
-- BODIES_FILE has one body a line: "<X-Hub-Signature-256 value> <body>". Thread n POSTs the
-- n-th of T equal slices in order, so no body is sent twice in a run; a thread that reaches the
-- end of its slice stops sending (or starts it again with "wrap", for the load generator's own
-- ceiling, where repeats do not matter). SECONDS after its first request a thread stops sending,
-- waits for its last answers, then stops; done() prints one line of JSON for bench/webhook.py.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } timespec;
int clock_gettime(int clock_id, timespec *now);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

-- per thread; globals, so that done() can read them with thread:get()
sent, answered, not_2xx, exhausted, started, last_answer = 0, 0, 0, 0, 0, 0
local signatures, bodies, next_body = {}, {}, 1
local seconds, wrap, deadline
local headers = { ["Content-Type"] = "application/json" }
local checked -- false on thread 0 until wrk's one call of request() to check it, before any connection

function init(args)
  local path, thread_count = args[1], tonumber(args[2])
  seconds, wrap, checked = tonumber(args[3]), args[4] == "wrap", index ~= 0
  local lines = {}
  for line in io.lines(path) do
    lines[#lines + 1] = line
  end
  local per_thread = math.floor(#lines / thread_count)
  for n = index * per_thread + 1, (index + 1) * per_thread do
    local space = lines[n]:find(" ", 1, true)
    signatures[#signatures + 1] = lines[n]:sub(1, space - 1)
    bodies[#bodies + 1] = lines[n]:sub(space + 1)
  end
end

local function finish_if_answered()
  if answered == sent then
    wrk.thread:stop()
  end
end

function request()
  if not checked then
    checked = true
    return wrk.format("POST", nil, headers, bodies[1])
  end
  local at = now()
  if deadline == nil then
    started, deadline = at, at + seconds
  end
  if next_body > #bodies then
    if wrap then
      next_body = 1
    else
      exhausted, deadline = 1, at
    end
  end
  if at >= deadline then
    finish_if_answered()
    return "" -- sends nothing: the connection waits, idle, until the thread stops
  end
  headers["X-Hub-Signature-256"] = signatures[next_body]
  local body = bodies[next_body]
  next_body, sent = next_body + 1, sent + 1
  return wrk.format("POST", nil, headers, body)
end

function response(status)
  answered, last_answer = answered + 1, now()
  if status < 200 or status > 299 then
    not_2xx = not_2xx + 1
  end
  if deadline ~= nil and last_answer >= deadline then
    finish_if_answered()
  end
end

function done(summary, latency)
  local sent_by_thread, answered, not_2xx, exhausted, rate = {}, 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    sent_by_thread[#sent_by_thread + 1] = thread:get("sent")
    answered = answered + thread:get("answered")
    not_2xx = not_2xx + thread:get("not_2xx")
    exhausted = exhausted + thread:get("exhausted")
    local busy = thread:get("last_answer") - thread:get("started")
    if busy > 0 then
      rate = rate + thread:get("answered") / busy
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'wrk_bodies {"sent_by_thread": [%s], "answered": %d, "not_2xx": %d, "exhausted": %d, "rate": %.1f, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d, "socket_errors": %d}\n',
    table.concat(sent_by_thread, ", "), answered, not_2xx, exhausted, rate,
    latency:percentile(50), latency:percentile(99), latency.max,
    errors.connect + errors.read + errors.write + errors.timeout))
end
