#!/usr/bin/env bash
# make bench: side-by-side throughput of wrk, Locust FastHttpUser, Locust HttpUser
# and phalanx (its Python sources and its compiled build) against one private
# nginx on 127.0.0.1, then memory per idle user.
#
# What it does (every step bounded in time, only 127.0.0.1 is targeted):
#   1. installs Debian's nginx and wrk when missing (apt-get, needs root); the
#      package's own service is not started (policy-rc.d) and, when this script
#      installed it, not left enabled;
#   2. builds the project venv (make venv-run), the compiled build (make compiled,
#      installed from its wheel into bench/.venv-phalanx-compiled) and
#      bench/.venv-locust with a pinned Locust;
#   3. starts its own nginx (bench/nginx.conf.template: 1 worker, no access log,
#      loopback only, a free port) from a temp dir, pinned to one CPU;
#   4. runs bench/throughput.py: each generator in turn, pinned to another CPU;
#   5. runs bench/memory.py (skip with BENCH_MEMORY=0);
#   6. stops nginx by its PID and removes the temp dir, whatever happens.
#
# Environment: BENCH_SECONDS (default 15) per generator, BENCH_USERS (default 50),
# BENCH_ROUNDS (default 1; N > 1 runs all generators N times and reports medians),
# BENCH_MEMORY_USERS (default 10000), BENCH_MEMORY=0 to skip the memory part,
# BENCH_COMPILED=0 to run phalanx from its Python sources only,
# BENCH_KEEP=1 to keep the temp dir (logs, raw JSON) for inspection.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
LOCUST_VERSION=2.47.0
LOCUST_VENV="$HERE/.venv-locust"
PHALANX_VENV="$ROOT/.venv"
PHALANX_COMPILED_VENV="$HERE/.venv-phalanx-compiled"
SECONDS_EACH=${BENCH_SECONDS:-15}
USERS=${BENCH_USERS:-50}
ROUNDS=${BENCH_ROUNDS:-1}
MEMORY_USERS=${BENCH_MEMORY_USERS:-10000}
PYTHON=${PYTHON:-python3}

WORK=""
NGINX_PID=""
CHILD_PID=""
POLICY_RC=""

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$CHILD_PID" ]] && kill -0 "$CHILD_PID" 2>/dev/null; then
        # throughput.py turns TERM into an interrupt that kills its current generator.
        kill -TERM "$CHILD_PID" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$CHILD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$CHILD_PID" 2>/dev/null || true
        wait "$CHILD_PID" 2>/dev/null || true
    fi
    if [[ -n "$NGINX_PID" ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$NGINX_PID" 2>/dev/null; then
            log "nginx (pid $NGINX_PID) did not stop on TERM; killing it"
            kill -KILL "$NGINX_PID" 2>/dev/null || true
        fi
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [[ -n "$POLICY_RC" ]]; then
        rm -f "$POLICY_RC"
    fi
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
            log "kept $WORK (logs and raw results)"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ "$SECONDS_EACH" =~ ^[0-9]+$ && "$SECONDS_EACH" -ge 1 && "$SECONDS_EACH" -le 3600 ]] \
    || die "BENCH_SECONDS must be a whole number of seconds, 1..3600 (got '$SECONDS_EACH')"
[[ "$USERS" =~ ^[0-9]+$ && "$USERS" -ge 1 && "$USERS" -le 10000 ]] \
    || die "BENCH_USERS must be 1..10000 (got '$USERS')"
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 && "$ROUNDS" -le 20 ]] \
    || die "BENCH_ROUNDS must be 1..20 (got '$ROUNDS')"
[[ "$MEMORY_USERS" =~ ^[0-9]+$ && "$MEMORY_USERS" -ge 1 && "$MEMORY_USERS" -le 100000 ]] \
    || die "BENCH_MEMORY_USERS must be 1..100000 (got '$MEMORY_USERS')"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"

# --- 1. system tools ----------------------------------------------------------------
install_tools() {
    local packages=() installed_nginx=0
    command -v nginx >/dev/null || { packages+=(nginx); installed_nginx=1; }
    command -v wrk >/dev/null || packages+=(wrk)
    command -v taskset >/dev/null || packages+=(util-linux)
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
    if [[ "${BENCH_COMPILED:-1}" != 0 ]]; then
        command -v cc >/dev/null || packages+=(gcc)
        "$PYTHON" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(
            os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || packages+=(python3-dev)
    fi
    ((${#packages[@]})) || return 0
    [[ $(id -u) -eq 0 ]] || die "missing ${packages[*]}: install them (apt-get install ${packages[*]}) or run as root"
    command -v apt-get >/dev/null || die "missing ${packages[*]} and no apt-get to install them"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        # Keep the package's maintainer scripts from starting the system nginx service.
        POLICY_RC=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
        chmod 755 "$POLICY_RC"
    fi
    log "installing ${packages[*]} (apt-get)"
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 900 \
        apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    if [[ -n "$POLICY_RC" ]]; then
        rm -f "$POLICY_RC"
        POLICY_RC=""
    fi
    if ((installed_nginx)) && command -v systemctl >/dev/null \
        && systemctl is-enabled --quiet nginx 2>/dev/null; then
        log "disabling the nginx system service that the package enabled (this bench runs its own)"
        systemctl disable --quiet nginx 2>/dev/null || true
    fi
}
install_tools
for tool in nginx wrk taskset; do
    command -v "$tool" >/dev/null || die "$tool is still missing after installation"
done

# --- 2. virtual environments ------------------------------------------------------------
log "project venv: make venv-run"
make -s -C "$ROOT" venv-run PYTHON="$PYTHON"
PHALANX="$PHALANX_VENV/bin/phalanx"
"$PHALANX" --version >/dev/null || die "$PHALANX --version failed: is the phalanx package complete?"

COMPILED_ARGS=()
if [[ "${BENCH_COMPILED:-1}" != 0 ]]; then
    # Installed from the wheel, as a user would install it (not from the source tree).
    log "compiled build: make compiled, installed into $PHALANX_COMPILED_VENV"
    make -s -C "$ROOT" compiled PYTHON="$PYTHON"
    [[ -x "$PHALANX_COMPILED_VENV/bin/python" ]] || "$PYTHON" -m venv "$PHALANX_COMPILED_VENV"
    "$PHALANX_COMPILED_VENV/bin/pip" install --quiet --disable-pip-version-check \
        --require-hashes -r "$ROOT/requirements/runtime.lock"
    "$PHALANX_COMPILED_VENV/bin/pip" install --quiet --disable-pip-version-check \
        --no-deps --force-reinstall "$ROOT"/build/compiled-wheel/phalanx-*.whl
    COMPILED_ARGS=(--phalanx-compiled "$PHALANX_COMPILED_VENV/bin/phalanx")
fi

if ! "$LOCUST_VENV/bin/locust" --version 2>/dev/null | grep -q "^locust $LOCUST_VERSION "; then
    log "bench venv: locust==$LOCUST_VERSION into $LOCUST_VENV (PyPI)"
    "$PYTHON" -m venv --clear "$LOCUST_VENV"
    timeout 900 "$LOCUST_VENV/bin/pip" install --quiet --disable-pip-version-check \
        "locust==$LOCUST_VERSION"
fi
"$LOCUST_VENV/bin/locust" --version | grep -q "^locust $LOCUST_VERSION " \
    || die "$LOCUST_VENV does not hold locust $LOCUST_VERSION"

# --- 3. CPUs and nginx ------------------------------------------------------------------
read -r -a CPUS <<<"$("$PYTHON" -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
PIN_ARGS=()
if ((${#CPUS[@]} >= 2)); then
    SERVER_CPU=${CPUS[0]}
    LOAD_CPU=${CPUS[1]}
    PIN_ARGS=(--server-cpu "$SERVER_CPU" --load-cpu "$LOAD_CPU")
    SERVER_PIN=(taskset -c "$SERVER_CPU")
    log "${#CPUS[@]} usable CPUs: nginx on CPU $SERVER_CPU, each load generator on CPU $LOAD_CPU"
else
    SERVER_PIN=()
    log "WARNING: only ${#CPUS[@]} usable CPU: nginx and the generators share it (no pinning);"
    log "         the figures are much less meaningful, ratios included"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/phalanx-bench.XXXXXX")
PORT=$("$PYTHON" - <<'EOF'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
EOF
)
sed -e "s|@DIR@|$WORK|g" -e "s|@PORT@|$PORT|g" "$HERE/nginx.conf.template" >"$WORK/nginx.conf"
NGINX_ARGS=(-p "$WORK/" -c "$WORK/nginx.conf")
if nginx -h 2>&1 | grep -q -- '^ *-e '; then
    NGINX_ARGS+=(-e "$WORK/error.log")
fi
nginx -t -q "${NGINX_ARGS[@]}" || die "nginx rejects $WORK/nginx.conf"
"${SERVER_PIN[@]}" nginx "${NGINX_ARGS[@]}" &
NGINX_PID=$!
HOST="http://127.0.0.1:$PORT"
if ! "$PYTHON" - "$PORT" <<'EOF'
import http.client, sys, time
deadline = time.monotonic() + 10
while True:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=1)
        conn.request("GET", "/")
        reply = conn.getresponse()
        ok = reply.status == 200 and reply.read() == b"hello\n"
        conn.close()
        sys.exit(0 if ok else 1)
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.05)
EOF
then
    cat "$WORK/error.log" >&2 2>/dev/null || true
    die "nginx did not answer on $HOST within 10 s"
fi
log "nginx (pid $NGINX_PID) serving $HOST from $WORK"

# --- 4. throughput ----------------------------------------------------------------------
mkdir -p "$HERE/results"
STAMP=$(date -u +%Y%m%d-%H%M%S)
RESULTS="$HERE/results/throughput-$STAMP.txt"
rc=0
# In the background so that a signal to this script is handled at once (see cleanup).
"$PHALANX_VENV/bin/python" "$HERE/throughput.py" \
    --host "$HOST" --seconds "$SECONDS_EACH" --users "$USERS" --rounds "$ROUNDS" "${PIN_ARGS[@]}" \
    --work-dir "$WORK" --results "$RESULTS" --wrk "$(command -v wrk)" \
    --locust "$LOCUST_VENV/bin/locust" --phalanx "$PHALANX" "${COMPILED_ARGS[@]}" \
    --nginx-version "$(nginx -v 2>&1 | sed 's/^nginx version: //')" &
CHILD_PID=$!
wait "$CHILD_PID" || rc=$?
CHILD_PID=""
kill -0 "$NGINX_PID" 2>/dev/null || die "nginx died during the run (see $WORK/error.log)"

# --- 5. memory per idle user ------------------------------------------------------------
if [[ "${BENCH_MEMORY:-1}" != 0 ]]; then
    # The compiled build when there is one: what a large run would use.
    MEMORY_PYTHON="$PHALANX_VENV/bin/python"
    ((${#COMPILED_ARGS[@]})) && MEMORY_PYTHON="$PHALANX_COMPILED_VENV/bin/python"
    printf '\n' >>"$RESULTS"
    "$PHALANX_VENV/bin/python" "$HERE/memory.py" --users "$MEMORY_USERS" \
        --phalanx-python "$MEMORY_PYTHON" --locust-python "$LOCUST_VENV/bin/python" \
        | tee -a "$RESULTS" || rc=1
fi
log "results: $RESULTS"
exit "$rc"
