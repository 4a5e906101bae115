#!/usr/bin/env bash
# End-to-end smoke test of the example server as an operator runs it:
#   1. with embedded defaults it starts, /health/live and /health/ready answer
#      200 application/health+json, the JWKS is public, every other route
#      answers 401 without a credential, `server bootstrap-key` prints a key
#      (alone on stdout) that the running server accepts, and SIGTERM stops
#      it with status 0;
#   2. with DOCAICHE_ENV=production and development defaults it refuses to
#      start (status 2), naming each offending setting;
#   3. a backend the build lacks (store.backend = "postgres" in a default
#      build) is refused by name with the feature to build with, and a
#      literal database URL is refused in production without being echoed.
# Called by scripts/test.sh; runnable on its own.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source-path=SCRIPTDIR source=services.sh
source "$REPO/scripts/services.sh"

cargo build --quiet -p docaiche-server --bin docaiche-server
SERVER=$(cargo metadata --format-version 1 --no-deps |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/docaiche-server

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

grep -q '"document store ready' "$WORK/server.log" || fail "no 'document store ready' log line"
grep -q '"sqlite' <(curl -sS "http://127.0.0.1:$PORT/health/ready") ||
	fail "readiness does not report the SQLite store"
for path in /health/live /health/ready; do
	headers=$(curl -sS -D - -o "$WORK/body.json" "http://127.0.0.1:$PORT$path")
	grep -qi '^content-type: application/health+json' <<<"$headers" ||
		fail "$path is not application/health+json: $headers"
	grep -q '"status":"pass"' "$WORK/body.json" || fail "$path body: $(cat "$WORK/body.json")"
done
status=$(curl -sS -o "$WORK/body.json" -w '%{http_code}' "http://127.0.0.1:$PORT/.well-known/jwks.json")
[[ $status == 200 ]] && grep -q '"kty":"OKP"' "$WORK/body.json" ||
	fail "JWKS gave $status $(cat "$WORK/body.json")"
for path in /nope /v1/keys /v1/whoami; do
	status=$(curl -sS -o "$WORK/body.json" -w '%{http_code}' "http://127.0.0.1:$PORT$path")
	[[ $status == 401 ]] && grep -q '"code":"unauthenticated"' "$WORK/body.json" ||
		fail "anonymous $path gave $status $(cat "$WORK/body.json")"
done
[[ -d $WORK/data ]] || fail "the data directory ./data was not created"

# The first credential: bootstrap-key against the same data directory.
(cd "$WORK" && exec env -u DOCAICHE_CONFIG "$SERVER" bootstrap-key --tenant smoke --name smoke-test \
	</dev/null >"$WORK/key.txt" 2>"$WORK/bootstrap.log") ||
	fail "bootstrap-key failed: $(cat "$WORK/bootstrap.log")"
[[ $(wc -l <"$WORK/key.txt") -eq 1 ]] && grep -q '^dcx_' "$WORK/key.txt" ||
	fail "bootstrap-key stdout is not one key: $(cat "$WORK/key.txt")"
KEY=$(cat "$WORK/key.txt")
api() { curl -sS -o "$WORK/body.json" -w '%{http_code}' -H "X-API-Key: $KEY" "$@"; }
status=$(api "http://127.0.0.1:$PORT/v1/whoami")
[[ $status == 200 ]] && grep -q '"tenant":"smoke"' "$WORK/body.json" ||
	fail "whoami with the bootstrap key gave $status $(cat "$WORK/body.json")"
status=$(api -X POST -H 'Content-Type: application/json' \
	-d '{"name":"reader","scopes":["documents:read"]}' "http://127.0.0.1:$PORT/v1/keys")
[[ $status == 201 ]] && grep -q '"key":"dcx_' "$WORK/body.json" ||
	fail "creating a key gave $status $(cat "$WORK/body.json")"
status=$(api "http://127.0.0.1:$PORT/v1/keys")
[[ $status == 200 ]] && grep -q '"name":"reader"' "$WORK/body.json" && ! grep -q '"key"' "$WORK/body.json" ||
	fail "listing keys gave $status $(cat "$WORK/body.json")"
status=$(api "http://127.0.0.1:$PORT/nope")
[[ $status == 404 ]] && grep -q '"code":"not-found"' "$WORK/body.json" ||
	fail "authenticated unknown route gave $status $(cat "$WORK/body.json")"
grep -q "$KEY" "$WORK/server.log" "$WORK/bootstrap.log" && fail "the key was logged"

kill -TERM "$PID"
exit_status=0
wait "$PID" || exit_status=$?
PID=
((exit_status == 0)) || fail "SIGTERM exit status $exit_status, expected 0"
grep -q 'server stopped' "$WORK/server.log" || fail "no 'server stopped' log line"
svc_log "server smoke: defaults start, health answers, bootstrap-key works, SIGTERM stops cleanly"

# --- 2. production refuses development defaults -----------------------------------
exit_status=0
(cd "$WORK" && exec env -u DOCAICHE_CONFIG DOCAICHE_ENV=production DOCAICHE_BIND="127.0.0.1:$(free_port)" \
	"$SERVER" </dev/null >"$WORK/prod.log" 2>&1) || exit_status=$?
((exit_status == 2)) || fail "production with defaults exited $exit_status, expected 2: $(cat "$WORK/prod.log")"
for setting in keys.source cors.allowed_origins auth.provider; do
	grep -q "$setting" "$WORK/prod.log" || fail "production refusal does not name $setting: $(cat "$WORK/prod.log")"
done
svc_log "server smoke: production refuses development defaults, naming each setting"

# --- 3. backends: a missing feature and a literal database URL ----------------------
exit_status=0
(cd "$WORK" && exec env -u DOCAICHE_CONFIG DOCAICHE_STORE_BACKEND=postgres \
	DOCAICHE_DATABASE_URL_SOURCE=env:DOCAICHE_DATABASE_URL \
	"$SERVER" </dev/null >"$WORK/pg.log" 2>&1) || exit_status=$?
((exit_status == 2)) || fail "postgres in a default build exited $exit_status, expected 2: $(cat "$WORK/pg.log")"
grep -q 'store.backend' "$WORK/pg.log" && grep -q -- '--features postgres' "$WORK/pg.log" ||
	fail "the postgres refusal does not name store.backend and the feature: $(cat "$WORK/pg.log")"
exit_status=0
(cd "$WORK" && exec env -u DOCAICHE_CONFIG DOCAICHE_ENV=production DOCAICHE_STORE_BACKEND=postgres \
	DOCAICHE_DATABASE_URL_SOURCE='postgres://app:smoke-hunter2@db/docaiche' \
	"$SERVER" </dev/null >"$WORK/pg-literal.log" 2>&1) || exit_status=$?
((exit_status == 2)) || fail "a literal database URL exited $exit_status, expected 2"
grep -q 'store.url_source' "$WORK/pg-literal.log" ||
	fail "the literal-URL refusal does not name store.url_source: $(cat "$WORK/pg-literal.log")"
grep -q 'smoke-hunter2' "$WORK/pg-literal.log" && fail "the refusal echoed the database password"
svc_log "server smoke: missing backend features and literal database URLs are refused by name"
