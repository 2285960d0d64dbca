#!/usr/bin/env bash
# Start the bundled demo shop on 127.0.0.1 and run a real 30-second load test against it.
# DEMO_PORT picks the port (default 0: any free port). The load goes only to the demo
# target this script started: if it cannot start, nothing is sent anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${DEMO_PORT:-0}"
LOG=$(mktemp)
.venv/bin/python examples/demo/target.py --port "$PORT" --max-seconds 120 >"$LOG" 2>&1 &
TARGET_PID=$!
trap 'kill "$TARGET_PID" 2>/dev/null || true; wait "$TARGET_PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
URL=""
for _ in $(seq 1 100); do
  URL=$(sed -n 's/^demo target listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$LOG")
  [ -n "$URL" ] && break
  if ! kill -0 "$TARGET_PID" 2>/dev/null; then
    echo "demo: the demo target did not start:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$URL" ]; then
  echo "demo: the demo target did not report its address in 10 s" >&2
  exit 1
fi
echo "demo target: $URL"
.venv/bin/phalanx run -f examples/demo/shopper.py --host "$URL" \
  -u 50 -r 10 -t 30s --json demo-summary.json
