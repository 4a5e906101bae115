#!/usr/bin/env bash
# HTTP load report, one run, loopback only, bounded in time:
#   bare axum "hello world" (docaiche-server/examples/hello.rs) against the full DocAIche
#   example server on an authenticated read route (GET /v1/whoami with an
#   API key: request id, trace span, CORS, security headers, body limit,
#   timeout, API key verification, rate limit on the principal and tenant,
#   permission guard, metrics).
#
#   Phase 1 (each server): maximum throughput, wrk closed loop, $DURATION s.
#   Phase 2 (each server): a constant load of half its own maximum (wrk with
#   a per-connection delay), p50/p95/p99 latency.
#
#   Targets: full stack >= 60% of bare axum's requests/s; full stack p95 <
#   10 ms at half of its own maximum. Exit status 1 when a target is missed.
#   Phase 1 also reports each server's CPU time per request (user + system,
#   from /proc), which is where the throughput ratio comes from.
#
#   USAGE_COMPARE=1 adds phase 3: the same server with per-key usage
#   counting on (the default) and off (usage.enabled = false, a second
#   instance on its own data directory), ROUNDS (default 3) alternating
#   maximum-throughput runs each, and reports the median server CPU per
#   request of each and their difference (target: counting costs <= 1 us).
#
# Usage: scripts/load-http.sh            (DURATION=10 THREADS=2 CONNECTIONS=64)
#        USAGE_COMPARE=1 ROUNDS=3 scripts/load-http.sh
# wrk comes from Debian (apt-get install wrk) when missing.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source-path=SCRIPTDIR source=services.sh
source "$REPO/scripts/services.sh"

DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
# Per-connection pause in phase 2; the connection count sets the rate.
DELAY_MS=10

# Made first: a missing wrk is installed (and logged here) before the
# minutes of a release build.
WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
# apt_install logs under RUN_DIR.
RUN_DIR=$WORK
if ! command -v wrk >/dev/null; then
	svc_may_install && apt_install wrk || svc_die "wrk is missing (apt-get install wrk)"
fi

svc_log "building the example server and the bare axum baseline (release)"
cargo build --quiet --release -p docaiche-server --bin docaiche-server --example hello
TARGET=$(cargo metadata --format-version 1 --no-deps |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release

# The full stack, as shipped, with limits high enough not to refuse the load
# and request logs at WARN (one JSON line per request otherwise).
cat >"$WORK/server.toml" <<EOF
[storage]
data_dir = "$WORK/data"
[log]
filter = "warn"
# wrk connects from 127.0.0.1 only: no per-address connection cap.
[http]
max_connections = 100000
max_connections_per_address = 100000
[rate_limit.policies.default]
limits = [
  { key = "tenant", limit = 1000000000, period_secs = 60 },
  { key = "principal", limit = 1000000000, period_secs = 60 },
]
[rate_limit.policies.probes]
limits = [{ key = "client_addr", limit = 1000000000, period_secs = 60 }]
EOF
KEY=$(DOCAICHE_CONFIG="$WORK/server.toml" "$TARGET/docaiche-server" bootstrap-key --tenant acme --name load 2>/dev/null)

HELLO_PORT=$(free_port)
"$TARGET/examples/hello" "127.0.0.1:$HELLO_PORT" </dev/null >"$WORK/hello.log" 2>&1 &
HELLO_PID=$!
PIDS+=("$HELLO_PID")
SERVER_PORT=$(free_port)
DOCAICHE_CONFIG="$WORK/server.toml" DOCAICHE_BIND="127.0.0.1:$SERVER_PORT" \
	"$TARGET/docaiche-server" </dev/null >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for 30 "hello" tcp_open 127.0.0.1 "$HELLO_PORT" || exit 1
up() { [[ $(http_status 127.0.0.1 "$SERVER_PORT" /health/ready) == 200 ]]; }
wait_for 60 "example server" up || {
	tail -n 20 "$WORK/server.log" >&2
	exit 1
}

cat >"$WORK/report.lua" <<'EOF'
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if pause > 0 then
	function delay() return pause end
end
function done(summary, latency, requests)
	local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
	io.write(string.format("RESULT rps=%.0f p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f requests=%d errors=%d non2xx=%d\n",
		summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
		summary.requests, errors, summary.errors.status))
end
EOF

# run NAME URL CONNECTIONS DELAY_MS [HEADER]: one bounded wrk run; prints its RESULT line.
run() {
	local name=$1 url=$2 connections=$3 delay=$4 header=${5:-}
	local args=(-t "$THREADS" -c "$connections" -d "${DURATION}s" --timeout 2s -s "$WORK/report.lua")
	[[ -n $header ]] && args+=(-H "$header")
	WRK_DELAY_MS=$delay timeout $((DURATION + 20)) wrk "${args[@]}" "$url" >"$WORK/$name.out" 2>&1 ||
		svc_die "wrk failed: $(cat "$WORK/$name.out")"
	grep '^RESULT' "$WORK/$name.out" | sed "s/^RESULT/$name/"
}
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"; }
# cpu_ticks PID: user + system clock ticks the process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# measured PID NAME URL CONNECTIONS DELAY_MS [HEADER]: `run`, plus the
# server's CPU time per answered request (cpu_us) over the run.
measured() {
	local pid=$1 before after line
	shift
	before=$(cpu_ticks "$pid")
	line=$(run "$@")
	after=$(cpu_ticks "$pid")
	python3 -c "import os, re, sys
line = sys.argv[1]
requests = int(re.search(r'requests=(\d+)', line).group(1))
ticks = int(sys.argv[3]) - int(sys.argv[2])
print(f'{line} cpu_us={ticks * 1e6 / os.sysconf(\"SC_CLK_TCK\") / max(requests, 1):.1f}')" "$line" "$before" "$after"
}

HELLO_URL="http://127.0.0.1:$HELLO_PORT/hello"
STACK_URL="http://127.0.0.1:$SERVER_PORT/v1/whoami"
AUTH="X-API-Key: $KEY"
# Warm up both (connection setup, caches, allocator).
DURATION=2 run warmup-bare "$HELLO_URL" "$CONNECTIONS" 0 >/dev/null
DURATION=2 run warmup-stack "$STACK_URL" "$CONNECTIONS" 0 "$AUTH" >/dev/null

echo "== phase 1: maximum throughput (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, closed loop)"
bare=$(measured "$HELLO_PID" bare-axum "$HELLO_URL" "$CONNECTIONS" 0)
echo "$bare"
stack=$(measured "$SERVER_PID" docaiche "$STACK_URL" "$CONNECTIONS" 0 "$AUTH")
echo "$stack"
[[ $(field "$stack" non2xx) == 0 ]] || svc_warn "the full stack answered non-2xx under load"

# Half of each server's own maximum: connections x (1000 / DELAY_MS) requests/s.
half_load() {
	python3 -c "import math; print(max(1, math.ceil(float('$1') / 2 * $DELAY_MS / 1000)))"
}
bare_half_conns=$(half_load "$(field "$bare" rps)")
stack_half_conns=$(half_load "$(field "$stack" rps)")
echo "== phase 2: half of each one's maximum (${DELAY_MS} ms pause per connection)"
bare_half=$(run bare-axum-half "$HELLO_URL" "$bare_half_conns" "$DELAY_MS")
echo "$bare_half (connections=$bare_half_conns)"
stack_half=$(run docaiche-half "$STACK_URL" "$stack_half_conns" "$DELAY_MS" "$AUTH")
echo "$stack_half (connections=$stack_half_conns)"

if [[ ${USAGE_COMPARE:-0} == 1 ]]; then
	# The same configuration, counting off, on a data directory of its own
	# (one server per data directory), with a key of its own.
	sed "s|data_dir = \"$WORK/data\"|data_dir = \"$WORK/data-off\"|" "$WORK/server.toml" >"$WORK/server-off.toml"
	printf '[usage]\nenabled = false\n' >>"$WORK/server-off.toml"
	KEY_OFF=$(DOCAICHE_CONFIG="$WORK/server-off.toml" "$TARGET/docaiche-server" bootstrap-key --tenant acme --name load 2>/dev/null)
	OFF_PORT=$(free_port)
	DOCAICHE_CONFIG="$WORK/server-off.toml" DOCAICHE_BIND="127.0.0.1:$OFF_PORT" \
		"$TARGET/docaiche-server" </dev/null >"$WORK/server-off.log" 2>&1 &
	OFF_PID=$!
	PIDS+=("$OFF_PID")
	up_off() { [[ $(http_status 127.0.0.1 "$OFF_PORT" /health/ready) == 200 ]]; }
	wait_for 60 "example server, usage off" up_off || {
		tail -n 20 "$WORK/server-off.log" >&2
		exit 1
	}
	OFF_URL="http://127.0.0.1:$OFF_PORT/v1/whoami"
	DURATION=2 run warmup-off "$OFF_URL" "$CONNECTIONS" 0 "X-API-Key: $KEY_OFF" >/dev/null
	echo "== phase 3: usage counting on and off (${ROUNDS:-3} alternating rounds)"
	on_runs=()
	off_runs=()
	for _ in $(seq "${ROUNDS:-3}"); do
		line=$(measured "$SERVER_PID" usage-on "$STACK_URL" "$CONNECTIONS" 0 "$AUTH")
		echo "$line"
		on_runs+=("$line")
		line=$(measured "$OFF_PID" usage-off "$OFF_URL" "$CONNECTIONS" 0 "X-API-Key: $KEY_OFF")
		echo "$line"
		off_runs+=("$line")
	done
	python3 - "${#on_runs[@]}" "${on_runs[@]}" "${off_runs[@]}" <<'EOF'
import re, statistics, sys
n = int(sys.argv[1])
def figures(lines, name):
    return [float(re.search(name + r"=([0-9.]+)", l).group(1)) for l in lines]
on, off = sys.argv[2:2 + n], sys.argv[2 + n:2 + 2 * n]
cpu_on, cpu_off = statistics.median(figures(on, "cpu_us")), statistics.median(figures(off, "cpu_us"))
rps_on, rps_off = statistics.median(figures(on, "rps")), statistics.median(figures(off, "rps"))
print(f"usage counting: median CPU per request on {cpu_on:.2f} us, off {cpu_off:.2f} us, "
      f"difference {cpu_on - cpu_off:+.2f} us (target <= 1 us); req/s on/off {rps_on / rps_off:.3f}")
EOF
fi

python3 - "$bare" "$stack" "$bare_half" "$stack_half" <<'EOF'
import re, sys
def parse(line):
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", line)}
bare, stack, bare_half, stack_half = map(parse, sys.argv[1:5])
ratio = stack["rps"] / bare["rps"]
p95 = stack_half["p95_ms"]
print("== report")
print(f"{'':24}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
for name, r in [("bare axum (max)", bare), ("docaiche (max)", stack),
                ("bare axum (half load)", bare_half), ("docaiche (half load)", stack_half)]:
    print(f"{name:24}{r['rps']:>10.0f}{r['p50_ms']:>9.3f}{r['p95_ms']:>9.3f}{r['p99_ms']:>9.3f}")
ok_ratio = ratio >= 0.6
ok_p95 = p95 < 10.0
# Where the ratio comes from: the load generator shares the cores, so each
# server's CPU time per request (user + system, kernel wakeups included)
# decides how many requests the machine completes.
print(f"server CPU per request at maximum: bare {bare['cpu_us']:.1f} us, docaiche {stack['cpu_us']:.1f} us")
print(f"throughput ratio docaiche/bare: {ratio:.2f} (target >= 0.60): {'PASS' if ok_ratio else 'FAIL'}")
print(f"docaiche p95 at half its maximum: {p95:.3f} ms (target < 10 ms): {'PASS' if ok_p95 else 'FAIL'}")
sys.exit(0 if ok_ratio and ok_p95 else 1)
EOF
