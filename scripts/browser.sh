#!/usr/bin/env bash
# Make Debian's Chromium available for the admin browser tests (tests/admin_console/test_browser.py).
# Playwright for Python drives /usr/bin/chromium through `executable_path`; Playwright's own browser
# downloads (`playwright install`) are never used. Installs with apt when run as root; otherwise
# says what is missing (the browser tests then fail loudly, they do not skip).
set -euo pipefail
CHROMIUM=${BRX_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (apt) for the admin browser tests"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "error: $CHROMIUM is missing; install Debian's chromium package (apt-get install chromium)" >&2
  exit 1
fi
