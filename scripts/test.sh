#!/usr/bin/env bash
# The whole check: lint (incl. security rules), types, layering, tests. Used by `make test` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
echo "== ruff"; $BIN/ruff check src tests bench examples
echo "== mypy"; $BIN/mypy
echo "== import-linter"; $BIN/lint-imports
echo "== pytest"
set +e
$BIN/pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
