#!/usr/bin/env bash
# Refresh the publish page's vendored hashes (hash-wasm: SHA-256 and BLAKE3 in WebAssembly) from
# npm: scripts/vendor_hash_wasm.sh 4.13.0
set -euo pipefail
version=${1:?usage: $0 VERSION}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "hash-wasm@$version" >/dev/null 2>&1 && tar xzf hash-wasm-"$version".tgz)
dest=registry/static/registry/vendor/hash-wasm-$version
mkdir -p "$dest"
cp "$tmp"/package/dist/{sha256,blake3}.umd.min.js "$tmp"/package/LICENSE "$dest"/
echo "vendored hash-wasm $version into $dest (update the script tags in registry/templates/registry/publish.html)"
