#!/bin/bash
# Main-thread CPU per sign-up under wrk, 8 connections, with the hash replaced or not
# (bench/experiments/signup-stand-in.mjs; decision 019). Needs wrk and bc.
#   STAND_IN=real  bash bench/experiments/signup-main-thread.sh
#   STAND_IN=timer bash bench/experiments/signup-main-thread.sh      (JITTER=1 to spread the answers)
#   STAND_IN=pool STAND_IN_MS=8 bash bench/experiments/signup-main-thread.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=$(mktemp -d)
PORT=${PORT:-4190}
SECONDS_RUN=${SECONDS_RUN:-10}
DATA_DIR=$DIR DATABASE_URL=sqlite://$DIR/app.db PORT=$PORT HOST=127.0.0.1 \
  BASE_URL=http://127.0.0.1:$PORT RATE_LIMITS=off LOG_LEVEL=warn MAIL_SERVER= INBOX_SMTP_PORT=0 \
  node bench/experiments/signup-stand-in.mjs >"$DIR/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.2; done
URL=http://127.0.0.1:$PORT/api/signup
wrk -t2 -c8 -d10s -s bench/lua/signup.lua "$URL" -- "warm$RANDOM" >/dev/null
ticks() { awk '{print $14 + $15}' "$1"; }
process_before=$(ticks /proc/$PID/stat)
main_before=$(ticks /proc/$PID/task/$PID/stat)
rps=$(wrk -t2 -c8 -d"${SECONDS_RUN}s" -s bench/lua/signup.lua "$URL" -- "run$RANDOM" | awk '/Requests\/sec/ {print $2}')
sleep 0.5
process_after=$(ticks /proc/$PID/stat)
main_after=$(ticks /proc/$PID/task/$PID/stat)
tick_ms=$((1000 / $(getconf CLK_TCK)))
requests=$(echo "$rps * $SECONDS_RUN" | bc)
echo "STAND_IN=${STAND_IN:-real}: $rps sign-ups/s;" \
  "main thread $(echo "scale=3; ($main_after - $main_before) * $tick_ms / $requests" | bc) ms a sign-up;" \
  "process $(echo "scale=3; ($process_after - $process_before) * $tick_ms / $requests" | bc) ms"
