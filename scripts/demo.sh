#!/usr/bin/env bash
# `npm run demo`: serve the digits example over OMI and KServe from one
# process, call it over both with the chassis CLI, then shut it down through
# the OMI Shutdown call (which drains both servers and exits 0).
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PSC_MODEL_PORT:-45000}"
http_port="${HTTP_PORT:-8080}"
chassis() { node bin/chassis.js "$@"; }

echo "\$ chassis serve examples/digits --port $port --http-port $http_port &"
chassis serve examples/digits --port "$port" --http-port "$http_port" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT

echo "\$ chassis client status --port $port --wait 20s"
chassis client status --port "$port" --wait 20s | head -12
echo "  ..."
echo "\$ chassis client run --port $port --input input=@examples/digits/sample.json        # OMI"
chassis client run --port "$port" --input input=@examples/digits/sample.json
echo "\$ chassis client predict --url http://localhost:$http_port --input input=@examples/digits/sample.json   # KServe v1"
chassis client predict --url "http://localhost:$http_port" --input input=@examples/digits/sample.json
echo "\$ chassis client predict --url http://localhost:$http_port --protocol v2 --input input=@examples/digits/sample.json   # KServe v2"
chassis client predict --url "http://localhost:$http_port" --protocol v2 --input input=@examples/digits/sample.json
echo "\$ chassis client shutdown --port $port"
chassis client shutdown --port "$port"
wait "$server"
echo "server exited with status $?"
trap - EXIT

# Where a container engine is present: build the image without a daemon and run it in podman.
if command -v podman >/dev/null 2>&1; then
  state="$(mktemp -d)"
  echo "\$ chassis build examples/digits --output docker-archive:$state/digits.tar"
  chassis build examples/digits --cache "$state/cache" --output "docker-archive:$state/digits.tar"
  socket="$(bash scripts/start-podman-service.sh "$state/podman")"
  trap 'bash scripts/stop-podman-service.sh "$state/podman"; rm -rf "$state"' EXIT
  echo "\$ chassis test-container $state/digits.tar --engine-socket $socket --input input=@examples/digits/sample.json"
  chassis test-container "$state/digits.tar" --engine-socket "$socket" --input input=@examples/digits/sample.json
else
  echo "(podman is not installed: skipping the image build and container run; see docs/image.md)"
fi
