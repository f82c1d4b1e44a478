-- Headers and path from the environment; one JSON line of results at the end.
--   BENCH_HEADERS          request headers, one "Name: value" a line (e.g. Authorization)
--   BENCH_ROTATE_USERS=N   replace {user} in the path with u0..u(N-1), round robin
local headers = os.getenv("BENCH_HEADERS") or ""
local rotate = tonumber(os.getenv("BENCH_ROTATE_USERS") or "0")
local counter = 0

function setup(thread)
	thread:set("id", counter)
	counter = counter + 1
end

function init(args)
	for line in string.gmatch(headers, "[^\n]+") do
		local name, value = string.match(line, "^([^:]+):%s*(.*)$")
		if name then wrk.headers[name] = value end
	end
	n = id * 7919
end

-- Only when rotating: wrk calls request() for every request if it exists, which
-- costs the load generator (and so the machine it shares) far more CPU than its
-- prebuilt static request.
if rotate > 0 then
	function request()
		n = n + 1
		return wrk.format(nil, (string.gsub(wrk.path, "{user}", "u" .. (n % rotate))))
	end
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d}\n',
		summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.timeout, e.status,
		latency:percentile(50), latency:percentile(99)))
end
