#!/usr/bin/env bash
# Start Debian's dockerd (docker.io 20.10) in the background for local/CI compose runs.
# Idempotent: does nothing when a dockerd answers; removes a stale pid file left by a hard kill
# (otherwise dockerd refuses: "pid file found, ensure docker is not running or delete /var/run/docker.pid").
# Log: /var/log/lakelab-dockerd.log; PID: /var/run/docker.pid.
set -euo pipefail
LOG=${DOCKERD_LOG:-/var/log/lakelab-dockerd.log}
PIDFILE=/var/run/docker.pid
if [ "$(id -u)" != 0 ]; then echo "dockerd-start.sh: run as root" >&2; exit 1; fi
command -v dockerd >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; }
if /usr/bin/docker info >/dev/null 2>&1; then echo "dockerd already running (PID $(cat $PIDFILE 2>/dev/null || echo ?))"; exit 0; fi
if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "removing stale $PIDFILE"; rm -f "$PIDFILE"
fi
# containerd's own pid/socket may be stale too after a hard kill
rm -f /var/run/docker/containerd/containerd.pid 2>/dev/null || true
setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &  # its own session: it outlives the shell that started it
for _ in $(seq 1 60); do
  /usr/bin/docker info >/dev/null 2>&1 && { echo "dockerd up, PID $(cat $PIDFILE), log $LOG"; exit 0; }
  sleep 0.5
done
echo "dockerd did not answer in 30 s; last log lines:" >&2; tail -20 "$LOG" >&2; exit 1
