#!/usr/bin/env bash
# Starts Debian's docker-registry (distribution 2.8) on 127.0.0.1 and a free
# port, with a temporary storage folder, for trying pushes by hand; installs
# docker-registry and apache2-utils first when missing (as root). Prints the
# URL and serves until Ctrl-C, then deletes the storage.
#   bash scripts/start-registry.sh                 # open
#   bash scripts/start-registry.sh --user alice:s3cret   # htpasswd basic auth
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx test/helpers/registry.ts "$@"
