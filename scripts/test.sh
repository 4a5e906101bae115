#!/usr/bin/env bash
# The whole test suite: formatting, clippy, and every test of the workspace
# (unit, integration, conformance, doctests, the example server) against real
# PostgreSQL, Redis (standalone and a 3-node Redis Cluster) and OpenBao on
# loopback, which it starts, and installs with apt/pip when missing (as root;
# DOCAICHE_NO_INSTALL=1 stops that).
#
# Usage:
#   ./scripts/test.sh                     fmt, clippy, docs, tests, backend table,
#                                         server smoke, console in Chromium,
#                                         schemathesis, fuzz smoke
#   ./scripts/test.sh --quick             tests only (no fmt, no clippy)
#   ./scripts/test.sh --quick -- --test backends
#                                         extra arguments go to cargo test
#   eval "$(./scripts/test.sh --services-only)"
#                                         start the servers, export their URLs
#
# Under CI=true or DOCAICHE_REQUIRE_BACKENDS=1, a server that cannot be had,
# or a backend suite that skipped, fails the run.
#
# Environment read: CI, DOCAICHE_REQUIRE_BACKENDS, DOCAICHE_NO_INSTALL,
# DOCAICHE_TEST_RUN_DIR (default .test-services/), DOCAICHE_FUZZ_SECONDS
# (per fuzz target, default 10), DOCAICHE_SCHEMATHESIS_* (see
# scripts/schemathesis.sh), and any DOCAICHE_TEST_*_URL
# / _REDIS_CLUSTER_URLS / _VAULT_ADDR + _VAULT_TOKEN already set (those
# servers are then used as they are). Environment set for the tests:
# DOCAICHE_TEST_POSTGRES_URL, DOCAICHE_TEST_REDIS_URL,
# DOCAICHE_TEST_REDIS_CLUSTER_URLS (comma-separated node URLs),
# DOCAICHE_TEST_VAULT_ADDR, DOCAICHE_TEST_VAULT_TOKEN, DOCAICHE_TEST_REPORT_DIR.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source-path=SCRIPTDIR source=services.sh
source "$REPO/scripts/services.sh"

# Backend suites that must report in (tests/backends/report.rs writes
# <suite>.ran or <suite>.skipped); suites not listed still show in the table.
EXPECTED_BACKEND_SUITES=(postgres postgres-store redis redis-limiter redis-cluster openbao redis-store redis-cluster-store vault-store server-postgres server-redis server-vault compliance-postgres)

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

quick=
services_only=
cargo_test_args=()
while (($#)); do
	case $1 in
	--quick) quick=1 ;;
	--services-only) services_only=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		cargo_test_args=("$@")
		break
		;;
	*)
		usage >&2
		svc_die "unknown argument: $1"
		;;
	esac
	shift
done

export RUST_BACKTRACE=1
if [[ -z ${CARGO_TERM_COLOR:-} ]]; then
	if backends_required || [[ ! -t 2 ]]; then CARGO_TERM_COLOR=never; else CARGO_TERM_COLOR=always; fi
fi
export CARGO_TERM_COLOR

# --- the run directory --------------------------------------------------------

RUN_DIR=${DOCAICHE_TEST_RUN_DIR:-$REPO/.test-services}
mkdir -p "$RUN_DIR"
chmod 700 "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
# One run at a time per run directory (fd 9 is closed for daemons we start).
if command -v flock >/dev/null; then
	exec 9>"$RUN_DIR/lock"
	if ! flock -n 9; then
		svc_log "another ./scripts/test.sh uses $RUN_DIR; waiting for it"
		flock 9
	fi
fi
rm -rf "$RUN_DIR/report"
mkdir -p "$RUN_DIR/report"
: >"$RUN_DIR/apt.log"
export DOCAICHE_TEST_REPORT_DIR=$RUN_DIR/report

cleanup() {
	local status=$?
	if [[ -z $services_only ]]; then
		stop_openbao
		stop_redis_cluster
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- steps ----------------------------------------------------------------------

STARTED=$SECONDS
step() {
	local name=$1 start=$SECONDS
	shift
	svc_log "$name: $*"
	if ! "$@"; then
		svc_die "$name failed ($*); see the output above"
	fi
	svc_log "$name passed in $((SECONDS - start))s"
}

# Each cargo feature of the facade builds on its own (and with none at all).
check_each_feature() {
	local feature
	cargo check --quiet -p docaiche --no-default-features || return 1
	for feature in $(cargo metadata --format-version 1 --no-deps |
		python3 -c 'import json,sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "docaiche":
        print(" ".join(f for f in p["features"] if f != "default"))'); do
		svc_log "features: docaiche --no-default-features --features $feature"
		cargo check --quiet -p docaiche --no-default-features --features "$feature" || return 1
	done
}

print_exports() {
	local var
	echo "# DocAIche test servers; OpenBao runs as pid ${BAO_PID:-?}: stop it with kill ${BAO_PID:-PID}"
	echo "# the Redis Cluster nodes' pidfiles are in $(redis_cluster_dir); the next run stops them"
	for var in DOCAICHE_TEST_POSTGRES_URL DOCAICHE_TEST_REDIS_URL DOCAICHE_TEST_REDIS_CLUSTER_URLS \
		DOCAICHE_TEST_VAULT_ADDR DOCAICHE_TEST_VAULT_TOKEN DOCAICHE_TEST_BAO_BIN DOCAICHE_TEST_REPORT_DIR; do
		if [[ -n ${!var:-} ]]; then printf 'export %s=%q\n' "$var" "${!var}"; fi
	done
}

# The table of backend suites; non-zero when one skipped or never reported
# and backends are required. Sets BACKENDS_NOT_RUN to their count.
BACKENDS_NOT_RUN=0
backend_summary() {
	local dir=$DOCAICHE_TEST_REPORT_DIR suites=("${EXPECTED_BACKEND_SUITES[@]}") file suite
	local result detail bad=0
	for file in "$dir"/*.ran "$dir"/*.skipped; do
		[[ -e $file ]] || continue
		suite=$(basename "${file%.*}")
		[[ " ${suites[*]} " == *" $suite "* ]] || suites+=("$suite")
	done
	printf '\n%-16s %-8s %s\n' 'backend suite' result detail >&2
	printf '%-16s %-8s %s\n' '-------------' ------ ------ >&2
	for suite in "${suites[@]}"; do
		if [[ -f $dir/$suite.ran ]]; then
			result=ran detail=$(head -n 1 "$dir/$suite.ran")
		elif [[ -f $dir/$suite.skipped ]]; then
			result=SKIPPED detail=$(head -n 1 "$dir/$suite.skipped") bad=$((bad + 1))
		else
			result=MISSING detail="no report: the suite did not run (filtered out, or its test binary failed)"
			bad=$((bad + 1))
		fi
		printf '%-16s %-8s %s\n' "$suite" "$result" "$detail" >&2
	done
	echo >&2
	BACKENDS_NOT_RUN=$bad
	if ((bad)) && backends_required; then
		svc_warn "CI=true / DOCAICHE_REQUIRE_BACKENDS=1: every backend suite must run against its server"
		return 1
	fi
}

if [[ -n $services_only ]]; then
	# The OpenBao of the previous --services-only run gives way to this one.
	if [[ -f $RUN_DIR/openbao.pid ]]; then
		BAO_PID=$(<"$RUN_DIR/openbao.pid")
		if [[ $BAO_PID =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$BAO_PID/cmdline" 2>/dev/null | grep -q 'bao server -dev'; then
			svc_log "stopping the OpenBao of the previous --services-only run (pid $BAO_PID)"
			stop_openbao
		fi
		BAO_PID=
		rm -f "$RUN_DIR/openbao.pid"
	fi
	ensure_services
	if [[ -n $BAO_PID ]]; then echo "$BAO_PID" >"$RUN_DIR/openbao.pid"; fi
	print_exports
	exit 0
fi

if [[ -z $quick ]]; then
	step format cargo fmt --all --check -- --color "$CARGO_TERM_COLOR"
	step deploy-files python3 "$REPO/scripts/check-deploy.py"
fi
svc_log "services: PostgreSQL, Redis, Redis Cluster, OpenBao"
ensure_services
if [[ -z $quick ]]; then
	step clippy cargo clippy --workspace --all-targets --all-features -- -D warnings
	step docs env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet
	step features check_each_feature
fi

svc_log "tests: cargo test --workspace --all-features --no-fail-fast ${cargo_test_args[*]}"
test_start=$SECONDS
test_status=0
locked=()
if backends_required; then locked=(--locked); fi
cargo test "${locked[@]}" --workspace --all-features --no-fail-fast "${cargo_test_args[@]}" || test_status=$?
summary_status=0
backend_summary || summary_status=$?

if ((test_status != 0)); then
	svc_die "tests failed after $((SECONDS - test_start))s (cargo test exited $test_status)"
fi
step server-smoke "$REPO/scripts/smoke-server.sh"
if [[ -z $quick ]]; then
	# The admin console in headless Chromium (installs chromium and the
	# pinned npm packages when missing).
	step console-browser "$REPO/scripts/console-browser.sh"
	# The OpenAPI document against the running server: every check, both
	# data modes, bounded (DOCAICHE_SCHEMATHESIS_FULL=1 for the long run).
	step schemathesis "$REPO/scripts/schemathesis.sh"
	# A short smoke run of every fuzz target over its committed seed corpus.
	step fuzz-smoke "$REPO/scripts/fuzz.sh" "${DOCAICHE_FUZZ_SECONDS:-10}"
fi
if ((summary_status != 0)); then
	svc_die "backend suites did not all run against real servers"
fi
if ((BACKENDS_NOT_RUN)); then
	svc_warn "passed, but $BACKENDS_NOT_RUN backend suite(s) did not run against a real server (see the table)"
fi
svc_log "all passed in $((SECONDS - STARTED))s"
