#!/usr/bin/env bash
# The programs some tests drive, from Debian's packages: headless Chromium for the browser test of the inbox
# demo page (tests/integration/test_inbox_demo_browser.py) and wrk, one of the HTTP clients whose own headers
# must keep a single create on the express lane (tests/app/test_express_create.py).
# Installed with apt-get where possible (root on Debian/Ubuntu); otherwise those tests are skipped with the reason.
set -u
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing what tests drive (apt-get install ${missing[*]})..."
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
    >/dev/null 2>&1 || echo "could not install ${missing[*]}; the tests that need them will be skipped" >&2
else
  echo "not installed: ${missing[*]} (Debian: apt-get install ${missing[*]}); the tests that need them will be skipped" >&2
fi
exit 0
