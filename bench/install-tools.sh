#!/usr/bin/env bash
# Installs the Debian load generators bench/ uses, if missing:
#   h2load (package nghttp2-client) for gRPC over HTTP/2, wrk for REST.
# Needs root (or sudo). Idempotent: does nothing when both are on PATH.
set -euo pipefail
missing=()
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-tools: h2load and wrk already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
h2load --version | head -1
wrk -v 2>&1 | head -1 || true
