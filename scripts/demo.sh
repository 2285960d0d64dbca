#!/usr/bin/env bash
# Start the bundled demo shop on 127.0.0.1 and run a real 30-second load test against it.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${DEMO_PORT:-8080}"
.venv/bin/python examples/demo/target.py --port "$PORT" --max-seconds 120 &
TARGET_PID=$!
trap 'kill "$TARGET_PID" 2>/dev/null || true; wait "$TARGET_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  if .venv/bin/python -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $PORT)))"; then
    break
  fi
  sleep 0.1
done
.venv/bin/phalanx run -f examples/demo/shopper.py --host "http://127.0.0.1:$PORT" \
  -u 50 -r 10 -t 30s --json demo-summary.json
