#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test of /docs
# (test/kserve/docs-browser.test.ts). Idempotent: does nothing when
# /usr/bin/chromium is already there. Needs root (CI runs as root); no
# browser is downloaded from anywhere but Debian's package archive
# (playwright-core never downloads one).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium))"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-chromium: /usr/bin/chromium is missing and installing it needs root; run: sudo bash $0" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium
echo "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium))"
