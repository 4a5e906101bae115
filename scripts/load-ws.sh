#!/usr/bin/env bash
# WebSocket scale report, loopback only, bounded in time: opens 10 000
# concurrent /v1/events connections against the example server
# (docaiche-server/examples/ws_load.rs), reports the server's resident memory per
# connection (target <= 32 KiB) and checks that the caps hold: with
# events.max_connections = 10000 and events.max_connections_per_tenant =
# 4000, tenants acme and globex open 4000 each and initech 2000; one more
# acme connection must be closed with 1013 (tenant cap), and one more
# initech connection too (server cap). Exit status 1 when a check fails.
#
# Usage: scripts/load-ws.sh        (CONNECTIONS is fixed by the caps above)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source-path=SCRIPTDIR source=services.sh
source "$REPO/scripts/services.sh"

SERVER_CAP=10000
TENANT_CAP=4000

# One socket per connection in each process (the client and the server).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= SERVER_CAP + 1000)) || svc_die "need $((SERVER_CAP + 1000)) file descriptors per process, have $(ulimit -n)"

svc_log "building the example server and the WebSocket load client (release)"
cargo build --quiet --release -p docaiche-server --bin docaiche-server --example ws_load
TARGET=$(cargo metadata --format-version 1 --no-deps |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release

WORK=$(mktemp -d)
PID=
cleanup() {
	[[ -n $PID ]] && kill "$PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/server.toml" <<EOF
[storage]
data_dir = "$WORK/data"
[log]
filter = "warn"
# Every client connects from 127.0.0.1 with one key per tenant: lift the
# listener's connection caps and the per-principal cap above the ones under
# test.
[http]
max_connections = $((SERVER_CAP + 1000))
max_connections_per_address = $((SERVER_CAP + 1000))
[events]
max_connections = $SERVER_CAP
max_connections_per_tenant = $TENANT_CAP
max_connections_per_principal = $TENANT_CAP
[rate_limit.policies.default]
limits = [
  { key = "tenant", limit = 1000000000, period_secs = 60 },
  { key = "principal", limit = 1000000000, period_secs = 60 },
]
EOF
keys=()
for spec in acme:4000 globex:4000 initech:2000; do
	tenant=${spec%%:*}
	key=$(DOCAICHE_CONFIG="$WORK/server.toml" "$TARGET/docaiche-server" bootstrap-key --tenant "$tenant" --name ws-load 2>/dev/null)
	keys+=(--key "$spec:$key")
done

PORT=$(free_port)
DOCAICHE_CONFIG="$WORK/server.toml" DOCAICHE_BIND="127.0.0.1:$PORT" \
	"$TARGET/docaiche-server" </dev/null >"$WORK/server.log" 2>&1 &
PID=$!
up() { [[ $(http_status 127.0.0.1 "$PORT" /health/ready) == 200 ]]; }
wait_for 60 "example server" up || {
	tail -n 20 "$WORK/server.log" >&2
	exit 1
}

echo "== $SERVER_CAP concurrent /v1/events connections on 127.0.0.1:$PORT"
status=0
timeout 180 "$TARGET/examples/ws_load" --addr "127.0.0.1:$PORT" --server-pid "$PID" \
	--tenant-cap "$TENANT_CAP" --server-cap "$SERVER_CAP" "${keys[@]}" || status=$?
echo "== /metrics after the run"
curl -sS "http://127.0.0.1:$PORT/metrics" | grep -E '^docaiche_events_(connections|refused|closed)' || true
exit "$status"
