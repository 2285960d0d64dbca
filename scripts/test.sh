#!/usr/bin/env bash
# The whole check: lint (incl. security rules), types, layering, tests. Used by `make test` and CI.
#
# pytest runs twice: the whole suite on the Python sources, then the tests of the
# hot path again on the compiled build (`make compiled`, in build/compiled), which
# must behave like its sources. Arguments (a focused run) go to the first
# pass only, and the compiled pass is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
COMPILED_TESTS=(
  tests/unit/test_build.py tests/unit/http tests/unit/stats tests/unit/scripting
  tests/unit/engine tests/unit/protocol tests/unit/config tests/integration/http
  tests/integration/scripting tests/integration/engine tests/integration/cluster
  tests/unit/exporters tests/unit/test_public_api.py tests/e2e/test_cli_run.py
  tests/e2e/test_cli_errors.py::test_version_prints_the_version_and_the_build
)

# pytest's "no tests ran" (5) is a failure here, whatever the pass.
run_pytest() {
  set +e
  "$@"
  local rc=$?
  set -e
  if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    return 1
  fi
  return "$rc"
}

echo "== ruff"; $BIN/ruff check src tests bench examples
echo "== mypy"; $BIN/mypy
echo "== import-linter"; $BIN/lint-imports
echo "== pytest (Python sources)"
run_pytest $BIN/pytest -q -p no:cacheprovider "$@"
if [ "$#" -gt 0 ]; then
  echo "== pytest (compiled build): skipped"
  exit 0
fi
if [ ! -f build/compiled/.stamp ]; then
  echo "no compiled build in build/compiled: run 'make compiled' (or 'make test')" >&2
  exit 1
fi
newer=$(find src setup.py pyproject.toml \( -name '*.py' -o -name '*.toml' \) \
  -newer build/compiled/.stamp -print -quit)
if [ -n "$newer" ]; then
  echo "build/compiled is older than $newer: run 'make compiled' (or 'make test')" >&2
  exit 1
fi
echo "== pytest (compiled build: the hot path's tests)"
# Absolute: CLI tests start phalanx in other working directories.
PYTHONPATH="$PWD/build/compiled" PHALANX_EXPECT_COMPILED=1 \
  run_pytest $BIN/pytest -q -p no:cacheprovider "${COMPILED_TESTS[@]}"
