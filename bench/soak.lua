-- wrk script for bench/soak.sh. bench/soak.sh prepends the pool it sealed with `wecom-sim
-- encrypt`: three lists `new`, `refresh` and `bad` of {p = path with query, b = body}.
-- The sequence per pooled message i: the message itself (new while the pool has not wrapped, a
-- WeCom retry afterwards), an immediate retry of the previous one on every second i, two stream
-- refreshes, and a malformed request on two of every five i (~10 % of all requests).
-- Each wrk thread starts at a different point of the sequence and counts the answers by class;
-- done() prints one line `soak: total=N 2xx=N 4xx=N 5xx=N other=N` that soak.sh parses.

local seq = {}
for i = 1, #new do
  seq[#seq + 1] = new[i]
  if i % 2 == 0 then seq[#seq + 1] = new[i - 1] end
  seq[#seq + 1] = refresh[(i % #refresh) + 1]
  seq[#seq + 1] = refresh[((i + 7) % #refresh) + 1]
  if i % 5 == 0 or i % 5 == 2 then seq[#seq + 1] = bad[(i % #bad) + 1] end
end

local threads = {}
local counter = 1

function setup(thread)
  thread:set("first", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  counter = (first % #seq) + 1
  c2, c4, c5, other = 0, 0, 0, 0
  requests = {}
  local headers = { ["Content-Type"] = "application/json" }
  for k, r in ipairs(seq) do requests[k] = wrk.format("POST", r.p, headers, r.b) end
end

function request()
  local r = requests[counter]
  counter = counter % #requests + 1
  return r
end

function response(status, headers, body)
  if status >= 200 and status < 300 then c2 = c2 + 1
  elseif status >= 400 and status < 500 then c4 = c4 + 1
  elseif status >= 500 then c5 = c5 + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local t2, t4, t5, to = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    t2 = t2 + thread:get("c2")
    t4 = t4 + thread:get("c4")
    t5 = t5 + thread:get("c5")
    to = to + thread:get("other")
  end
  io.write(string.format("soak: total=%d 2xx=%d 4xx=%d 5xx=%d other=%d sequence=%d p50=%.2fms p99=%.2fms\n",
    t2 + t4 + t5 + to, t2, t4, t5, to, #seq, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
