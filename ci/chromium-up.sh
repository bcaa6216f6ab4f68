#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/test_html_chromium.py; run as root).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium already installed: $(chromium --version 2>/dev/null || true)"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y --no-install-recommends chromium
echo "chromium ready: $(chromium --version 2>/dev/null || true)"
