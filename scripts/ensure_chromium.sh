#!/bin/sh
# Make sure headless Chromium is installed for the browser tests (tests/integration/test_browser.py).
# Installs the Debian package `chromium` when /usr/bin/chromium is missing; never downloads
# Playwright's own browser builds. Exit status 0 when /usr/bin/chromium is usable afterwards.
set -eu
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "ensure_chromium: $CHROMIUM is missing and this user cannot apt-get install it" >&2
        exit 1
    fi
fi
# Serialize concurrent callers (several test sessions may start at once).
exec 9>/tmp/assay-ensure-chromium.lock
flock 9
if [ ! -x "$CHROMIUM" ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >&2 || true
    $SUDO apt-get install -y -qq --no-install-recommends chromium >&2
fi
[ -x "$CHROMIUM" ]
