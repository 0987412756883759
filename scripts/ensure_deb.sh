#!/bin/sh
# Make sure a program from Debian's packages is installed: ensure_deb.sh BINARY PACKAGE.
# Installs PACKAGE with apt-get when BINARY is missing (tests and `make up` use Debian's chromium
# and nginx; nothing is downloaded from elsewhere). Exit status 0 when BINARY is usable afterwards.
set -eu
BINARY=$1
PACKAGE=$2
if [ -x "$BINARY" ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "ensure_deb: $BINARY is missing and this user cannot apt-get install $PACKAGE" >&2
        exit 1
    fi
fi
# Serialize concurrent callers (several test sessions may start at once).
exec 9>"/tmp/assay-ensure-$PACKAGE.lock"
flock 9
if [ ! -x "$BINARY" ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >&2 || true
    $SUDO apt-get install -y -qq --no-install-recommends "$PACKAGE" >&2
fi
[ -x "$BINARY" ]
