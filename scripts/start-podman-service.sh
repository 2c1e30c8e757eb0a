#!/usr/bin/env bash
# Installs podman with runc (if missing) and starts podman's Docker-compatible
# API service on a private unix socket, with the flags this kind of host needs
# (SPEC.md section 6: crun fails on hybrid cgroups, runc needs cgroupfs).
# Prints the socket path; writes the service's PID to $STATE/podman.pid.
# Usage: start-podman-service.sh STATE_DIR
set -euo pipefail
state="${1:?usage: start-podman-service.sh STATE_DIR}"
mkdir -p "$state"
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "podman and runc are missing; install them (apt-get install podman runc) or run as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq podman runc >/dev/null
fi
socket="$state/podman.sock"
rm -f "$socket"
# Its own store, so tests neither see nor disturb other images on the machine.
podman --root "$state/root" --runroot "$state/run" --runtime runc --cgroup-manager cgroupfs \
  system service --time 0 "unix://$socket" > "$state/podman-service.log" 2>&1 &
echo $! > "$state/podman.pid"
for _ in $(seq 1 100); do
  [ -S "$socket" ] && break
  sleep 0.1
done
[ -S "$socket" ] || { echo "podman system service did not start; see $state/podman-service.log" >&2; exit 1; }
echo "$socket"
