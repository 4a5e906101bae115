#!/usr/bin/env bash
# Schemathesis against the example server: every operation of its OpenAPI
# document (GET /openapi.json), with every check (`--checks all`) and both
# data-generation modes (positive and negative), over real HTTP. The document
# and the server must agree exactly: a valid-by-schema request the server
# refuses, an invalid one it accepts, an answer (status, content type,
# headers, body) the document does not describe, or a 5xx, fails the run.
#
#   1. builds the example server (debug, default features);
#   2. in a temporary directory, creates with `server bootstrap-key` a key
#      whose principal also holds the cross-tenant `platform-admin` role (a
#      binding in the run's configuration), so every route is reachable;
#   3. starts the server on 127.0.0.1 with the embedded defaults plus that
#      configuration: the rate limits and the lockout thresholds are raised so
#      the generated requests explore the API rather than the limiter (429 is
#      still documented on every operation and stays a valid answer);
#   4. runs schemathesis (pinned; installed with pip into a venv under
#      .test-services/ when missing) and exits with its status.
#
# Every operation is run but the WebSocket `GET /v1/events`: schemathesis
# speaks HTTP only, and returns the upgraded connection of a 101 to its
# pool, where the next request fails on it. Its upgrade handshake and
# refusals are tested in docaiche-server (events/tests.rs, tests/e2e/rejections.rs).
#
# Usage:
#   ./scripts/schemathesis.sh          bounded run (CI: a few minutes, fixed seed)
#   ./scripts/schemathesis.sh --full   full-length run (random seed, many examples)
#
# Environment read: DOCAICHE_SCHEMATHESIS_FULL=1 (same as --full),
# DOCAICHE_SCHEMATHESIS_MAX_EXAMPLES, DOCAICHE_SCHEMATHESIS_MAX_TIME (seconds),
# DOCAICHE_SCHEMATHESIS_SEED, DOCAICHE_TEST_RUN_DIR (default .test-services/),
# DOCAICHE_NO_INSTALL=1 (never pip install). Reports (JUnit, and the
# server's log on failure) go to $RUN_DIR/schemathesis/.
# Called by scripts/test.sh (not with --quick); runnable on its own.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source-path=SCRIPTDIR source=services.sh
source "$REPO/scripts/services.sh"

# The pinned schemathesis: bump deliberately, and run --full once after.
SCHEMATHESIS_VERSION=4.32.5

full=${DOCAICHE_SCHEMATHESIS_FULL:-0}
case ${1:-} in
--full) full=1 ;;
"") ;;
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	exit 0
	;;
*) svc_die "unknown argument: $1 (try --help)" ;;
esac
if [[ $full == 1 ]]; then
	max_examples=${DOCAICHE_SCHEMATHESIS_MAX_EXAMPLES:-1000}
	max_time=${DOCAICHE_SCHEMATHESIS_MAX_TIME:-3600}
	seed=${DOCAICHE_SCHEMATHESIS_SEED:-$((RANDOM * 32768 + RANDOM))}
else
	max_examples=${DOCAICHE_SCHEMATHESIS_MAX_EXAMPLES:-60}
	max_time=${DOCAICHE_SCHEMATHESIS_MAX_TIME:-240}
	# A fixed seed keeps CI reproducible; --full explores new ground.
	seed=${DOCAICHE_SCHEMATHESIS_SEED:-20261207}
fi

RUN_DIR=${DOCAICHE_TEST_RUN_DIR:-$REPO/.test-services}
mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
REPORT_DIR=$RUN_DIR/schemathesis
mkdir -p "$REPORT_DIR"

# --- schemathesis, pinned ---------------------------------------------------------
VENV=$RUN_DIR/schemathesis-venv
ST=$VENV/bin/st
# The newest Python 3 at hand, 3.12 or later when there is one: CPython
# before 3.11.8 and 3.12.1 can fail hypothesis's `ast.parse` in a threaded
# run with "SystemError: AST constructor recursion depth mismatch"
# (python/cpython#106905), which schemathesis reports as a runtime error of
# whichever operation it was generating for.
# Candidates: python3.13 and python3.12 on the PATH, and the CPythons of a
# pyenv installation (whose shims answer only for the selected version).
PYTHON=python3
pyenv_pythons=()
if command -v pyenv >/dev/null; then
	mapfile -t pyenv_pythons < <(ls -d "$(pyenv root)"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV)
fi
for candidate in python3.13 python3.12 "${pyenv_pythons[@]}"; do
	if "$candidate" -c 'import venv' >/dev/null 2>&1; then
		PYTHON=$candidate
		break
	fi
done
venv_python() { "$VENV/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null; }
if ! [[ -x $ST ]] || [[ $("$ST" --version 2>/dev/null) != *"version $SCHEMATHESIS_VERSION" ]] ||
	[[ $(venv_python) != $("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])') ]]; then
	# A venv of our own: no root needed, nothing installed system-wide.
	[[ ${DOCAICHE_NO_INSTALL:-0} != 1 ]] ||
		svc_die "schemathesis $SCHEMATHESIS_VERSION is not in $VENV and DOCAICHE_NO_INSTALL=1"
	if ! "$PYTHON" -m venv --help >/dev/null 2>&1; then
		apt_install python3-venv || svc_die "python3 -m venv is not available"
	fi
	svc_log "pip install schemathesis==$SCHEMATHESIS_VERSION into $VENV with $("$PYTHON" --version) (log: $RUN_DIR/pip.log)"
	rm -rf "$VENV"
	run_logged "$RUN_DIR/pip.log" "$PYTHON" -m venv "$VENV" ||
		svc_die "cannot create the venv $VENV"
	run_logged "$RUN_DIR/pip.log" "$VENV/bin/pip" install --disable-pip-version-check --no-input \
		"schemathesis==$SCHEMATHESIS_VERSION" || svc_die "cannot install schemathesis"
fi

# --- the server -------------------------------------------------------------------
cargo build --quiet -p docaiche-server --bin docaiche-server
SERVER=$(cargo metadata --format-version 1 --no-deps |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/docaiche-server

WORK=$(mktemp -d)
PID=
cleanup() {
	if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# Only what differs from the embedded defaults.
cat >"$WORK/server.toml" <<'EOF'
# The principal of the run's key holds platform-admin as well as the
# bootstrap role: cross-tenant routes are reachable too.
[[auth.bindings]]
tenant = "schemathesis"
principal = "schemathesis-admin"
role = "platform-admin"
cross_tenant = true

# Schemathesis sends thousands of requests, many with bad or no credentials
# (the ignored_auth check): the limits are raised so it explores the API.
[auth.lockout]
client_addr = { free_attempts = 1000000, base_delay_ms = 1, max_delay_secs = 1 }
network = { free_attempts = 1000000, base_delay_ms = 1, max_delay_secs = 1 }
device = { free_attempts = 1000000, base_delay_ms = 1, max_delay_secs = 1 }
account = { free_attempts = 1000000, base_delay_ms = 1, max_delay_secs = 1 }
max_failures_per_hour = 100

[rate_limit.policies.auth]
limits = [{ key = "client_addr", limit = 1000000, period_secs = 60 }]

[rate_limit.policies.default]
limits = [{ key = "principal", limit = 1000000, period_secs = 60 }]

[rate_limit.policies.documents]
limits = [{ key = "principal", limit = 1000000, period_secs = 60 }]
concurrency = { limit = 64 }

[rate_limit.policies.probes]
limits = [{ key = "client_addr", limit = 1000000, period_secs = 60 }]
EOF

fail() {
	svc_warn "schemathesis: $*"
	[[ -f $WORK/server.log ]] && cp "$WORK/server.log" "$REPORT_DIR/server.log" &&
		svc_warn "the server's log: $REPORT_DIR/server.log"
	exit 1
}

# The key first, before the server holds the data directory.
(cd "$WORK" && exec env -u DOCAICHE_ENV DOCAICHE_CONFIG="$WORK/server.toml" "$SERVER" bootstrap-key \
	--tenant schemathesis --principal schemathesis-admin --name schemathesis \
	</dev/null >"$WORK/key.txt" 2>"$WORK/bootstrap.log") ||
	fail "bootstrap-key failed: $(cat "$WORK/bootstrap.log")"
KEY=$(cat "$WORK/key.txt")

PORT=$(free_port)
(cd "$WORK" && exec env -u DOCAICHE_ENV DOCAICHE_CONFIG="$WORK/server.toml" \
	DOCAICHE_BIND="127.0.0.1:$PORT" "$SERVER" </dev/null >"$WORK/server.log" 2>&1 9>&-) &
PID=$!
ready() {
	kill -0 "$PID" 2>/dev/null || return 2
	[[ $(http_status 127.0.0.1 "$PORT" /health/ready) == 200 ]]
}
wait_for 60 "example server on 127.0.0.1:$PORT" ready || fail "the server never became ready"

# --- the run ----------------------------------------------------------------------
svc_log "schemathesis $SCHEMATHESIS_VERSION: all checks, positive and negative data, \
at most $max_examples examples per operation and ${max_time}s, seed $seed"
# The key through the document's own `apiKey` scheme, so the ignored_auth
# check can leave it out; the file names the variable, never the key.
cat >"$WORK/schemathesis.toml" <<'EOF'
[auth.openapi.apiKey]
api_key = "${DOCAICHE_SCHEMATHESIS_KEY}"

# A well-formed request may still conflict with the state it meets: a second
# invitation to the same e-mail (POST /v1/accounts), a rotation of a rotated
# key. The documented 409 is an acceptance of the data, not a refusal of it;
# so is a 429 (the failed-login budget per client address, which the run's
# many bad passwords from one address may still spend).
[checks.positive_data_acceptance]
expected-statuses = ["2xx", 401, 403, 404, 409, 429]
EOF
status=0
# Run from the report directory: schemathesis keeps its replay data
# (`st replay <id>`) in ./.schemathesis.
(cd "$REPORT_DIR" && DOCAICHE_SCHEMATHESIS_KEY=$KEY PYTHONPATH="$REPO/scripts" \
	SCHEMATHESIS_HOOKS=schemathesis_hooks exec "$ST" --config-file "$WORK/schemathesis.toml" \
	run "http://127.0.0.1:$PORT/openapi.json" \
	--checks all \
	--exclude-path /v1/events \
	--mode all \
	--phases examples,coverage,fuzzing,stateful \
	--max-examples "$max_examples" \
	--max-time "$max_time" \
	--seed "$seed" \
	--workers 2 \
	--request-timeout 30 \
	--report junit --report-dir . \
	--output-sanitize true \
	--warnings off \
	--generation-database none \
	--no-color </dev/null) || status=$?

kill -0 "$PID" 2>/dev/null || fail "the server died during the run"
if grep -q "$KEY" "$WORK/server.log"; then fail "the key was logged"; fi
((status == 0)) || fail "schemathesis found failures (exit status $status, seed $seed; \
rerun with DOCAICHE_SCHEMATHESIS_SEED=$seed)"
svc_log "schemathesis: no failure"
