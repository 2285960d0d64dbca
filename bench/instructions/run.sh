#!/usr/bin/env bash
# Instructions per request of phalanx's whole request path (deterministic; see
# count_requests.py). Needs valgrind (apt-get install valgrind). About a minute.
#
#   bash bench/instructions/run.sh            # the Python sources
#   bash bench/instructions/run.sh compiled   # the compiled build (after `make compiled`)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { apt-get update -q && apt-get install -y -q valgrind; }
export OPENBLAS_NUM_THREADS=1  # numpy (imported by phalanx.stats) must not add idle BLAS threads
expected="pure Python"
if [[ "${1:-}" == compiled ]]; then
  [[ -f build/compiled/.stamp ]] || { echo "no compiled build: run 'make compiled'" >&2; exit 1; }
  export PYTHONPATH="$PWD/build/compiled"
  expected="compiled"
fi
build=$(.venv/bin/python -c 'from phalanx.core.build import build_kind; print(build_kind())')
[[ "$build" == "$expected" ]] || { echo "expected a $expected build, found: $build" >&2; exit 1; }
instructions() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    .venv/bin/python bench/instructions/count_requests.py "$1" 2>&1 | awk '/Collected/{print $4}'
}
low=$(instructions 2000)
high=$(instructions 12000)
python3 -c "print(f'instructions per request ($build): {($high - $low) / 10000:,.0f}')"
