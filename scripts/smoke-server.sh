#!/usr/bin/env bash
# End-to-end smoke test of the example server as an operator runs it:
#   1. with embedded defaults it starts, /health/live and /health/ready answer
#      200 application/health+json, and SIGTERM stops it with status 0;
#   2. with DOCAICHE_ENV=production and development defaults it refuses to
#      start (status 2), naming each offending setting.
# Called by scripts/test.sh; runnable on its own.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source-path=SCRIPTDIR source=services.sh
source "$REPO/scripts/services.sh"

cargo build --quiet --example server
SERVER=$(cargo metadata --format-version 1 --no-deps |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/examples/server

WORK=$(mktemp -d)
PID=
cleanup() {
	if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID"; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	svc_warn "server smoke: $*"
	[[ -f $WORK/server.log ]] && tail -n 30 "$WORK/server.log" >&2
	exit 1
}

# --- 1. embedded defaults ---------------------------------------------------------
PORT=$(free_port)
(cd "$WORK" && exec env -u DOCAICHE_CONFIG DOCAICHE_BIND="127.0.0.1:$PORT" \
	"$SERVER" </dev/null >"$WORK/server.log" 2>&1) &
PID=$!
ready() {
	kill -0 "$PID" 2>/dev/null || return 2
	[[ $(http_status 127.0.0.1 "$PORT" /health/ready) == 200 ]]
}
wait_for 60 "example server on 127.0.0.1:$PORT" ready || fail "never became ready"

for path in /health/live /health/ready; do
	headers=$(curl -sS -D - -o "$WORK/body.json" "http://127.0.0.1:$PORT$path")
	grep -qi '^content-type: application/health+json' <<<"$headers" ||
		fail "$path is not application/health+json: $headers"
	grep -q '"status":"pass"' "$WORK/body.json" || fail "$path body: $(cat "$WORK/body.json")"
done
status=$(curl -sS -o "$WORK/body.json" -w '%{http_code}' "http://127.0.0.1:$PORT/nope")
[[ $status == 404 ]] && grep -q '"code":"not-found"' "$WORK/body.json" ||
	fail "unknown route gave $status $(cat "$WORK/body.json")"
[[ -d $WORK/data ]] || fail "the data directory ./data was not created"

kill -TERM "$PID"
exit_status=0
wait "$PID" || exit_status=$?
PID=
((exit_status == 0)) || fail "SIGTERM exit status $exit_status, expected 0"
grep -q 'server stopped' "$WORK/server.log" || fail "no 'server stopped' log line"
svc_log "server smoke: defaults start, health answers, SIGTERM stops cleanly"

# --- 2. production refuses development defaults -----------------------------------
exit_status=0
(cd "$WORK" && exec env -u DOCAICHE_CONFIG DOCAICHE_ENV=production DOCAICHE_BIND="127.0.0.1:$(free_port)" \
	"$SERVER" </dev/null >"$WORK/prod.log" 2>&1) || exit_status=$?
((exit_status == 2)) || fail "production with defaults exited $exit_status, expected 2: $(cat "$WORK/prod.log")"
for setting in keys.source cors.allowed_origins; do
	grep -q "$setting" "$WORK/prod.log" || fail "production refusal does not name $setting: $(cat "$WORK/prod.log")"
done
svc_log "server smoke: production refuses development defaults, naming each setting"
