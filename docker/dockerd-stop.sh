#!/usr/bin/env bash
# Stop the dockerd that docker/dockerd-start.sh started (its PID file), waiting until it is gone.
set -euo pipefail
PIDFILE=/var/run/docker.pid
[ -f "$PIDFILE" ] || { echo "no $PIDFILE: no dockerd to stop"; exit 0; }
pid=$(cat "$PIDFILE")
kill "$pid" 2>/dev/null || { echo "dockerd (PID $pid) is not running"; exit 0; }
for _ in $(seq 1 60); do
  kill -0 "$pid" 2>/dev/null || { echo "dockerd (PID $pid) stopped"; exit 0; }
  sleep 0.5
done
echo "dockerd (PID $pid) still runs after 30 s" >&2
exit 1
