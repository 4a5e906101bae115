#!/usr/bin/env bash
# The Redis rate limiter's throughput beside redis-benchmark's ceiling.
#
# Loads the limiter's own GCRA script (docaiche-ratelimit/src/redis/gcra.lua)
# into Redis with SCRIPT LOAD, runs redis-benchmark on that EVALSHA with the
# same arguments the limiter sends (random keys out of the same key space),
# then the limiter's bench (benches/ratelimit_redis.rs) with as many
# concurrent callers as redis-benchmark has connections, and prints both
# decisions/s and their ratio (the target is at least 60 %). redis-benchmark
# runs twice: one request at a time per connection (the reference figure), and
# 16 deep in a pipeline, a ceiling closer to what the limiter's one
# multiplexed connection does with 64 callers.
#
# Usage: ./scripts/bench-redis-limiter.sh
# Environment: DOCAICHE_TEST_REDIS_URL (default redis://127.0.0.1:6379),
# DOCAICHE_BENCH_TASKS (callers and connections, default 64),
# DOCAICHE_BENCH_SECONDS (limiter run, default 5), DOCAICHE_BENCH_REQUESTS
# (redis-benchmark requests, default 500000), DOCAICHE_BENCH_KEYS (default
# 100000).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

URL=${DOCAICHE_TEST_REDIS_URL:-redis://127.0.0.1:6379}
TASKS=${DOCAICHE_BENCH_TASKS:-64}
SECONDS_RUN=${DOCAICHE_BENCH_SECONDS:-5}
REQUESTS=${DOCAICHE_BENCH_REQUESTS:-500000}
KEYS=${DOCAICHE_BENCH_KEYS:-100000}
export DOCAICHE_TEST_REDIS_URL=$URL DOCAICHE_BENCH_TASKS=$TASKS \
	DOCAICHE_BENCH_SECONDS=$SECONDS_RUN DOCAICHE_BENCH_KEYS=$KEYS

for tool in redis-cli redis-benchmark; do
	command -v "$tool" >/dev/null || {
		echo "ERROR: $tool not found (apt-get install redis-tools)" >&2
		exit 1
	}
done

# redis-benchmark takes host and port, not a URL.
hostport=${URL#*://}
hostport=${hostport#*@}
hostport=${hostport%%/*}
HOST=${hostport%:*}
PORT=${hostport##*:}
[[ $PORT != "$hostport" ]] || PORT=6379

SHA=$(redis-cli -u "$URL" SCRIPT LOAD "$(cat docaiche-ratelimit/src/redis/gcra.lua)")
echo "==> script $SHA loaded on $HOST:$PORT"

# The arguments the limiter sends for 1 000 000 per second, cost 1, check:
# T = 1000 ns, C = T * limit. The key space matches the limiter bench's
# (redis-benchmark replaces __rand_int__ with a number below -r).
# redis_benchmark PIPELINE: requests per second of the EVALSHA.
redis_benchmark() {
	redis-benchmark -h "$HOST" -p "$PORT" -c "$TASKS" -n "$REQUESTS" -r "$KEYS" -q -P "$1" \
		EVALSHA "$SHA" 1 'docaiche:bench:{key:__rand_int__}' 1000 1000000000 1000000 1 0 |
		tr '\r' '\n' | grep -Eo '[0-9.]+ requests per second' | tail -n 1 | awk '{print $1}'
}
echo "==> redis-benchmark: $REQUESTS x EVALSHA, $TASKS connections, $KEYS keys"
baseline=$(redis_benchmark 1)
# Pipelined 16 deep: closer to what one multiplexed connection achieves.
pipelined=$(redis_benchmark 16)
[[ -n $baseline && -n $pipelined ]] || {
	echo "ERROR: could not read redis-benchmark's requests per second" >&2
	exit 1
}
echo "redis-benchmark EVALSHA: $baseline requests/s (-P 16: $pipelined requests/s)"

echo "==> limiter bench: $TASKS tasks for ${SECONDS_RUN}s"
output=$(cargo bench --quiet --features redis --bench ratelimit_redis 2>&1) || {
	echo "$output" >&2
	exit 1
}
echo "$output" | grep -v '^decisions_per_sec='
ours=$(echo "$output" | sed -n 's/^decisions_per_sec=//p')
[[ -n $ours ]] || {
	echo "ERROR: the bench printed no decisions_per_sec (no Redis?)" >&2
	exit 1
}

redis-cli -u "$URL" --scan --pattern 'docaiche:bench:*' | xargs -r -n 1000 redis-cli -u "$URL" UNLINK >/dev/null

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", 100 * a / b }'; }
printf '\n%-34s %12s\n' 'redis-benchmark EVALSHA' "$baseline/s"
printf '%-34s %12s\n' 'redis-benchmark EVALSHA -P 16' "$pipelined/s"
printf '%-34s %12s\n' 'RedisRateLimiter::check' "$ours/s"
printf '%-34s %12s  (target >= 60%%)\n' 'ratio to redis-benchmark' "$(ratio "$ours" "$baseline")"
printf '%-34s %12s\n' 'ratio to redis-benchmark -P 16' "$(ratio "$ours" "$pipelined")"
