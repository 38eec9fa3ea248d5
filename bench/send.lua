-- wrk script: POST /v1/messages with a ~4 KB text body (RSA-2048 signing).
-- BENCH_API_KEY comes from the environment (scripts/bench-accept sets it).
local key = os.getenv("BENCH_API_KEY")
local size = tonumber(os.getenv("BENCH_BYTES") or "4096")
local line = "The quick brown fox jumps over the lazy dog 0123456789.\n"
local text = string.rep(line, math.floor(size / #line))

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"from": "Bench <bench@example.com>", "to": "someone@example.org", '
  .. '"subject": "Benchmark message", "text": "' .. text:gsub("\n", "\\n") .. '"}'

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("requests: %d in %.1fs = %.0f sends/s\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("errors: connect %d, read %d, write %d, status %d, timeout %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
