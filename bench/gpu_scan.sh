#!/usr/bin/env bash
# The vocabulary scan's cost on a GPU machine (run from the repository root there; see README
# "Benchmarks"). Needs, in .devbuild/: the llama-cpp-python sdist (vendored llama.cpp; stripped of
# its docs and vocab files to travel), the diskcache and gguf wheels, and smollm2-tokenizer.gguf
# (bench/shape_model.py --tokenizer-only). Builds llama-cpp-python with CUDA for this GPU, then
# times the scan of SmolLM2-135M-shaped and 8B-shaped models on the GPU and on the CPU cores.
set -euo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -m pip install -q --no-index --no-deps --no-compile .devbuild/diskcache-*.whl .devbuild/gguf-*.whl
t0=$(date +%s)
rm -rf /tmp/lcp && mkdir -p /tmp/lcp && tar xzf .devbuild/llama_cpp_python-*.tar.gz -C /tmp/lcp
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
CMAKE_ARGS="-DGGML_CUDA=on -DGGML_CUDA_FA=OFF -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF" \
  python3 -m pip install -q --no-build-isolation --no-deps --no-compile /tmp/lcp/llama_cpp_python-* > "$OUT/build.log" 2>&1 \
  || { tail -50 "$OUT/build.log"; exit 1; }
echo "llama-cpp-python CUDA build: $(( $(date +%s) - t0 )) s" | tee -a "$OUT/gpu.txt"
python3 -c "import llama_cpp; print('gpu offload:', llama_cpp.llama_supports_gpu_offload())" | tee -a "$OUT/gpu.txt"
python3 -c "import json; from runner.hardware import detect_hardware; print(json.dumps(detect_hardware().to_dict(), indent=1))" \
  > "$OUT/hardware.json" 2>&1 || true
tok=.devbuild/smollm2-tokenizer.gguf
# each step bounded, so a crash or hang in one still leaves the others' numbers
timeout ${T_135M_GPU:-80} python3 bench/vocab_scan.py --shape 135m --tokenizer-from $tok --frames echo,departure --devices gpu --json "$OUT/scan-135m-gpu.json" || echo "135m gpu: rc=$?"
timeout ${T_8B:-130} python3 bench/vocab_scan.py --shape 8b --tokenizer-from $tok --limit ${LIMIT_8B:-8192} --frames echo --devices gpu --json "$OUT/scan-8b.json" || echo "8b gpu: rc=$?"
timeout ${T_135M_CPU:-50} python3 bench/vocab_scan.py --shape 135m --tokenizer-from $tok --limit 4096 --frames echo --devices cpu --json "$OUT/scan-135m-cpu.json" || echo "135m cpu: rc=$?"
