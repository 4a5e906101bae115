#!/usr/bin/env bash
# The admin console in a real browser (tests/console/browser.mjs): Debian's
# headless Chromium (packages chromium and chromium-driver, installed with
# apt when missing and allowed) driven by playwright-core, pages checked by
# axe-core (both from npm, versions pinned in tests/console/package-lock.json).
#
# It starts the example server (debug build, SQLite, embedded defaults, usage
# flushed every second) on a free loopback port, creates an administrator
# with `bootstrap-admin`, and browses: sign-in, overview, a key created with
# a hostile name and shown once, requests made with it and its usage chart
# changing, a cross-site form post refused, the key revoked, sign-out. Each
# step's 1280×800 screenshot and results.json are kept under
# $DOCAICHE_TEST_REPORT_DIR/console-browser (default target/console-browser).
#
# Usage:
#   scripts/console-browser.sh                      run the test
#   scripts/console-browser.sh --update-screenshots also copy the overview and
#                                                   the key-usage screenshots
#                                                   to docs/console/ (README)
# Called by scripts/test.sh; runnable on its own.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source-path=SCRIPTDIR source=services.sh
source "$REPO/scripts/services.sh"

UPDATE=0
[[ ${1:-} == --update-screenshots ]] && UPDATE=1

if ! command -v chromium >/dev/null; then
	[[ -n ${DOCAICHE_NO_INSTALL:-} || $(id -u) != 0 ]] &&
		{ svc_warn "console browser test: chromium is missing (apt-get install chromium chromium-driver)"; exit 1; }
	svc_log "installing Debian's chromium and chromium-driver"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null
fi
(cd tests/console && npm ci --no-audit --no-fund --silent)

cargo build --quiet -p docaiche-server --bin docaiche-server
SERVER=$(cargo metadata --format-version 1 --no-deps |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/docaiche-server
OUT=${DOCAICHE_TEST_REPORT_DIR:-$REPO/target}/console-browser
rm -rf "$OUT" && mkdir -p "$OUT"

WORK=$(mktemp -d)
PID=
cleanup() {
	if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID"; fi
	rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
	svc_warn "console browser test: $*"
	[[ -f $WORK/server.log ]] && tail -n 30 "$WORK/server.log" >&2
	exit 1
}

PORT=$(free_port)
(cd "$WORK" && exec env -u DOCAICHE_CONFIG DOCAICHE_BIND="127.0.0.1:$PORT" \
	DOCAICHE_USAGE_FLUSH_INTERVAL_SECS=1 "$SERVER" </dev/null >"$WORK/server.log" 2>&1) &
PID=$!
ready() {
	kill -0 "$PID" 2>/dev/null || return 2
	[[ $(http_status 127.0.0.1 "$PORT" /health/ready) == 200 ]]
}
wait_for 60 "example server on 127.0.0.1:$PORT" ready || fail "the server never became ready"

TENANT=acme
EMAIL=admin@acme.example
PASSWORD="console browser test passphrase $RANDOM$RANDOM"
(cd "$WORK" && printf '%s\n' "$PASSWORD" | env -u DOCAICHE_CONFIG "$SERVER" bootstrap-admin \
	--tenant "$TENANT" --email "$EMAIL" >"$WORK/admin.txt" 2>"$WORK/bootstrap.log") ||
	fail "bootstrap-admin failed: $(cat "$WORK/bootstrap.log")"

BASE="http://127.0.0.1:$PORT" TENANT=$TENANT EMAIL=$EMAIL PASSWORD=$PASSWORD OUT=$OUT \
	node tests/console/browser.mjs || fail "the browser test failed (screenshots in $OUT)"
grep -q "$PASSWORD" "$WORK/server.log" && fail "the password was logged"

if ((UPDATE)); then
	mkdir -p docs/console
	cp "$OUT/05b-overview-in-use.png" docs/console/overview.png
	cp "$OUT/05-key-usage.png" docs/console/key-usage.png
	svc_log "screenshots copied to docs/console/"
fi
svc_log "console browser test: passed; screenshots in $OUT"
