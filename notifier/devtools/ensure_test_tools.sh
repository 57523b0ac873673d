#!/usr/bin/env bash
# The programs some tests drive, from Debian's packages: headless Chromium for the browser test of the inbox
# demo page (tests/integration/test_inbox_demo_browser.py) and wrk, one of the HTTP clients whose own headers
# must keep a single create on the express lane (tests/app/test_express_create.py); and promtool, which checks
# the Prometheus alert rules and runs their unit tests (tests/app/test_deployment_files.py): only that binary,
# taken out of Debian's prometheus package into .venv/bin (installing the package would start a Prometheus).
# Installed with apt-get where possible (root on Debian/Ubuntu); otherwise those tests are skipped with the reason.
set -u
export DEBIAN_FRONTEND=noninteractive
root=0
[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && root=1
updated=0
apt_update_once() { [ $updated = 1 ] || { apt-get update -qq >/dev/null 2>&1 && updated=1; }; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  if [ $root = 1 ]; then
    echo "Installing what tests drive (apt-get install ${missing[*]})..."
    { apt_update_once && apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; } \
      || echo "could not install ${missing[*]}; the tests that need them will be skipped" >&2
  else
    echo "not installed: ${missing[*]} (Debian: apt-get install ${missing[*]}); the tests that need them will be skipped" >&2
  fi
fi

if ! command -v promtool >/dev/null 2>&1 && [ ! -x .venv/bin/promtool ] && [ -d .venv/bin ] \
   && command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  download() { (cd "$tmp" && apt-get download -qq prometheus) >/dev/null 2>&1; }
  if { download || { [ $root = 1 ] && [ $updated = 0 ] && apt_update_once && download; }; } \
     && dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" && cp "$tmp/x/usr/bin/promtool" .venv/bin/promtool; then
    echo "promtool taken from Debian's prometheus package into .venv/bin"
  else
    echo "could not get promtool (Debian: apt-get download prometheus); the alert rules' unit tests will be skipped" >&2
  fi
  rm -rf "$tmp"
fi
exit 0
