#!/usr/bin/env bash
# Headless Chromium for the browser test of the inbox demo page (tests/integration/test_inbox_demo_browser.py).
# Installed with apt-get where possible (root on Debian/Ubuntu); otherwise that test is skipped with the reason.
set -u
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing chromium for the browser test (apt-get install chromium)..."
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
    >/dev/null 2>&1 || echo "could not install chromium; the browser test will be skipped" >&2
else
  echo "chromium is not installed (Debian: apt-get install chromium); the browser test will be skipped" >&2
fi
exit 0
