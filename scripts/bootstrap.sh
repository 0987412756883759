#!/usr/bin/env bash
# Create .venv and install Assay with its server, runner and test dependencies.
# llama-cpp-python compiles llama.cpp; the built wheel is cached under $ASSAY_CACHE_DIR/wheels
# (keyed by version, machine and CPU flags) and reused when present, rebuilt when absent.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_VERSION=0.3.36
CACHE=${ASSAY_CACHE_DIR:-$HOME/.cache/assay}
PYTHON=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# An editable install by a path entry (compat), not setuptools' import hook: the hook costs every
# Python start about 10 ms of imports (pathlib, importlib.util), which each `assay` command and
# each of fifty pulls at once pays (bench/load.py).
# (setuptools calls that mode transitional and says so at each install, silenced here; where a
# later setuptools drops the mode, the default install is taken.)
PYTHONWARNINGS="ignore:Compat editable installs" \
  .venv/bin/python -m pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[server,test,convert]' \
  || .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[server,test,convert]'
# Bytecode, as installing a wheel writes it: where PYTHONDONTWRITEBYTECODE is set, every process
# would otherwise compile the modules it imports again (40 ms of an `assay` command's start).
.venv/bin/python -m compileall -q -j 0 assay registry verifier runner >/dev/null

cpu_key=$( (grep -m1 -E '^(flags|Features)' /proc/cpuinfo || uname -m) | sha256sum | cut -c1-12)
# A GPU build (e.g. ASSAY_LLAMA_CMAKE_ARGS=-DGGML_CUDA=on) is cached apart from the CPU build.
flags_key=""
[ -n "${ASSAY_LLAMA_CMAKE_ARGS:-}" ] && flags_key="-$(printf %s "$ASSAY_LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-8)"
wheeldir="$CACHE/wheels/llama-cpp-python-$LLAMA_VERSION-$(uname -m)-$cpu_key$flags_key"
installed_from=$(cat .venv/.assay-llama-wheel 2>/dev/null || true)
if [ "$installed_from" != "$wheeldir" ] \
   || ! .venv/bin/python -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$LLAMA_VERSION')" 2>/dev/null; then
  if ! ls "$wheeldir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $LLAMA_VERSION (several minutes; cached in $wheeldir)"
    rm -rf "$wheeldir.tmp" && mkdir -p "$wheeldir.tmp"
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF ${ASSAY_LLAMA_CMAKE_ARGS:-}" \
      .venv/bin/python -m pip wheel -q --no-deps "llama-cpp-python==$LLAMA_VERSION" -w "$wheeldir.tmp"
    rm -rf "$wheeldir" && mv "$wheeldir.tmp" "$wheeldir"
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheeldir"/llama_cpp_python-*.whl
  .venv/bin/python -m pip install -q --disable-pip-version-check "$wheeldir"/llama_cpp_python-*.whl  # its dependencies
  echo "$wheeldir" > .venv/.assay-llama-wheel
fi

# llama.cpp's own tools (llama-quantize for importance-matrix quants, llama-imatrix, llama-gguf-split),
# from the same vendored source, run on the wheel's libraries (assay/toolchain/llama_tools.py); cached like the wheel.
tools_bin=$(scripts/build_llama_tools.sh)
echo "$tools_bin" > .venv/.assay-llama-tools

# llama.cpp's Hugging Face converter from the same vendored source (assay convert, and a verifier
# converting a release's upstream files again); unpacked in seconds, cached like the tools.
convert_dir=$(scripts/unpack_llama_converter.sh)
echo "$convert_dir" > .venv/.assay-llama-convert
