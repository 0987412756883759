#!/usr/bin/env bash
# Build llama.cpp's own tools (llama-quantize, llama-imatrix, llama-gguf-split) from the llama.cpp
# source vendored in the pinned llama-cpp-python sdist, with the same CMake arguments as the wheel.
# They run against the wheel's libllama/libggml (LD_LIBRARY_PATH, no RPATH: see assay/toolchain/llama_tools.py),
# so a quantization with an importance matrix runs the same library code as one through the bindings.
# Cached under $ASSAY_CACHE_DIR/tools/<version>-<machine>-<cpu flags>[-<cmake args>]; reused when present.
#
#   scripts/build_llama_tools.sh            # prints the folder that holds the binaries
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_VERSION=0.3.36
CACHE=${ASSAY_CACHE_DIR:-$HOME/.cache/assay}
TOOLS="llama-quantize llama-imatrix llama-gguf-split"

cpu_key=$( (grep -m1 -E '^(flags|Features)' /proc/cpuinfo || uname -m) | sha256sum | cut -c1-12)
flags_key=""
[ -n "${ASSAY_LLAMA_CMAKE_ARGS:-}" ] && flags_key="-$(printf %s "$ASSAY_LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-8)"
dest="$CACHE/tools/llama-tools-$LLAMA_VERSION-$(uname -m)-$cpu_key$flags_key"

have_all() { for t in $TOOLS; do [ -x "$dest/bin/$t" ] || return 1; done; }
if have_all; then echo "$dest/bin"; exit 0; fi

echo "building llama.cpp tools ($TOOLS) from llama-cpp-python $LLAMA_VERSION's vendored source (several minutes; cached in $dest)" >&2
sdist_dir="$CACHE/sdist"
mkdir -p "$sdist_dir"
sdist=$(ls "$sdist_dir"/llama_cpp_python-$LLAMA_VERSION.tar.gz 2>/dev/null || true)
if [ -z "$sdist" ]; then
  py=.venv/bin/python; [ -x "$py" ] || py=python3
  "$py" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    "llama-cpp-python==$LLAMA_VERSION" -d "$sdist_dir" >&2
  sdist="$sdist_dir/llama_cpp_python-$LLAMA_VERSION.tar.gz"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/assay-llama-tools.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar xzf "$sdist" -C "$work"
src="$work/llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp"
# shellcheck disable=SC2086
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DCMAKE_SKIP_RPATH=ON \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF ${ASSAY_LLAMA_CMAKE_ARGS:-} > "$work/cmake.log" 2>&1 \
  || { tail -30 "$work/cmake.log" >&2; exit 1; }
# shellcheck disable=SC2086
cmake --build "$work/build" --config Release -j "$(nproc)" --target $TOOLS > "$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log" >&2; exit 1; }
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/bin"
for t in $TOOLS; do cp "$work/build/bin/$t" "$dest.tmp/bin/"; done
# The tools' own helper libraries (libllama-common, libllama-quantize-impl, ...); libllama and libggml
# come from the wheel.
find "$work/build/bin" -maxdepth 1 -name 'libllama-*.so*' -exec cp -P {} "$dest.tmp/bin/" \;
ldd_out=$(LD_LIBRARY_PATH="$dest.tmp/bin:$work/build/bin" ldd "$dest.tmp/bin/llama-quantize")
case "$ldd_out" in *"not found"*) echo "$ldd_out" >&2; echo "llama-quantize misses a library" >&2; exit 1;; esac
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "$dest/bin"
