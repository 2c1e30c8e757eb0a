#!/usr/bin/env bash
# `npm run demo`: serve the digits example and call it over OMI with the
# chassis CLI, then shut it down through the Shutdown call.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PSC_MODEL_PORT:-45000}"
chassis() { node bin/chassis.js "$@"; }

echo "\$ chassis serve examples/digits --port $port &"
chassis serve examples/digits --port "$port" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT

echo "\$ chassis client status --port $port --wait 20s"
chassis client status --port "$port" --wait 20s | head -12
echo "  ..."
echo "\$ chassis client run --port $port --input input=@examples/digits/sample.json"
chassis client run --port "$port" --input input=@examples/digits/sample.json
echo "\$ chassis client shutdown --port $port"
chassis client shutdown --port "$port"
wait "$server"
echo "server exited with status $?"
trap - EXIT
