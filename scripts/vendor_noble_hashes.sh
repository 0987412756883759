#!/usr/bin/env bash
# Refresh the vendored SHA-256 of the publish page from npm: scripts/vendor_noble_hashes.sh 2.4.0
set -euo pipefail
version=${1:?usage: $0 VERSION}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "@noble/hashes@$version" >/dev/null && tar xzf noble-hashes-"$version".tgz)
dest=registry/static/registry/vendor/noble-hashes-$version
mkdir -p "$dest"
cp "$tmp"/package/{sha2.js,_md.js,_u64.js,utils.js,LICENSE} "$dest"/
echo "vendored @noble/hashes $version into $dest (update the import in registry/static/registry/publish.js)"
