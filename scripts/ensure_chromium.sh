#!/bin/sh
# Make sure headless Chromium is installed for the browser tests (tests/integration/test_browser.py):
# the Debian package `chromium`, never Playwright's own browser builds.
exec "$(dirname "$0")/ensure_deb.sh" "${CHROMIUM:-/usr/bin/chromium}" chromium
