#!/usr/bin/env bash
# Unpack llama.cpp's Hugging Face converter (convert_hf_to_gguf.py, its conversion/ package and
# gguf-py/) from the llama.cpp source vendored in the pinned llama-cpp-python sdist: the same
# source the wheel and the tools are built from (assay/toolchain/convert.py runs it). Cached under
# $ASSAY_CACHE_DIR/tools/llama-convert-<version>; reused when present.
#
#   scripts/unpack_llama_converter.sh       # prints the folder that holds convert_hf_to_gguf.py
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_VERSION=0.3.36
CACHE=${ASSAY_CACHE_DIR:-$HOME/.cache/assay}
dest="$CACHE/tools/llama-convert-$LLAMA_VERSION"
if [ -f "$dest/convert_hf_to_gguf.py" ] && [ -d "$dest/conversion" ] && [ -d "$dest/gguf-py" ]; then echo "$dest"; exit 0; fi

sdist_dir="$CACHE/sdist"
mkdir -p "$sdist_dir"
sdist="$sdist_dir/llama_cpp_python-$LLAMA_VERSION.tar.gz"
if [ ! -f "$sdist" ]; then
  py=.venv/bin/python; [ -x "$py" ] || py=python3
  "$py" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    "llama-cpp-python==$LLAMA_VERSION" -d "$sdist_dir" >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/assay-llama-convert.XXXXXX")
trap 'rm -rf "$work"' EXIT
top="llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp"
tar xzf "$sdist" -C "$work" "$top/convert_hf_to_gguf.py" "$top/conversion" "$top/gguf-py" "$top/LICENSE"
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
cp -a "$work/$top/convert_hf_to_gguf.py" "$work/$top/conversion" "$work/$top/gguf-py" "$work/$top/LICENSE" "$dest.tmp/"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "$dest"
