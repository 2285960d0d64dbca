#!/usr/bin/env bash
# Make sure the tools `make test` and `make demo` need exist: make, a Python 3.11+
# that can create virtual environments (Debian ships venv/ensurepip separately),
# Chromium for the web UI's browser tests, and a C compiler with Python's headers
# for the compiled build the tests also run (`make compiled`).
# On Debian/Ubuntu missing pieces are installed with apt-get (needs root); elsewhere
# this only says what is missing.
set -euo pipefail
missing=()
command -v make >/dev/null 2>&1 || missing+=(make)
if ! command -v python3 >/dev/null 2>&1; then
  missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
# The web UI's browser tests drive Debian's Chromium (playwright cannot download one here).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# `phalanx certs dev` (and its tests) call the openssl command.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# mypyc's C output is compiled with the system compiler against python3's headers.
command -v cc >/dev/null 2>&1 || missing+=(gcc)
if command -v python3 >/dev/null 2>&1 && ! python3 -c \
    'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    >/dev/null 2>&1; then
  missing+=(python3-dev)
fi
if [ "${#missing[@]}" -eq 0 ]; then
  :
elif command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
else
  echo "missing: ${missing[*]} (install them, then run make again)" >&2
  exit 1
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "phalanx needs Python 3.11 or newer; python3 is $(python3 --version)" >&2
  exit 1
}
