-- wrk script: POSTs one OAuth token request per call. The form body and the Authorization
-- header come from the environment (TOKEN_BODY, TOKEN_AUTHORIZATION), so the same script
-- loads any token endpoint. Non-200 answers are counted and reported at the end.
wrk.method = "POST"
wrk.body = os.getenv("TOKEN_BODY") or "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local authorization = os.getenv("TOKEN_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  failed = 0
end

function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local failures = 0
  for _, thread in ipairs(threads) do
    failures = failures + thread:get("failed")
  end
  io.write(string.format("RESULT requests_per_sec=%.1f p50_ms=%.2f p99_ms=%.2f failed=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, failures))
end
