#!/usr/bin/env bash
# Stops what start-podman-service.sh STATE_DIR started and removes its store:
# containers, the API service, and the overlay mount podman leaves on its root.
set -uo pipefail
state="${1:?usage: stop-podman-service.sh STATE_DIR}"
[ -d "$state" ] || exit 0
podman --root "$state/root" --runroot "$state/run" --runtime runc --cgroup-manager cgroupfs rm -af -t 2 >/dev/null 2>&1
[ -f "$state/podman.pid" ] && kill "$(cat "$state/podman.pid")" 2>/dev/null
sleep 0.2
umount "$state/root/overlay" 2>/dev/null
rm -rf "$state"
