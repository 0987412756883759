# One image for the web registry, its maintenance worker and the verifier.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git postgresql-client python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
# A virtual environment, so that the same steps work on the Python image and on a CUDA image.
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# LLAMA_CMAKE_ARGS: extra llama.cpp build flags, e.g. -DGGML_CUDA=on for the GPU verifier
# (docker-compose's `gpu` profile builds FROM an nvidia/cuda devel image with it).
ARG LLAMA_CMAKE_ARGS=""
ENV CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF ${LLAMA_CMAKE_ARGS}"
# The slow layers first, so that a change to the code rebuilds only the last ones.
# llama.cpp's own tools (llama-quantize for importance-matrix quants) and its Hugging Face converter,
# from the llama.cpp source vendored in the pinned llama-cpp-python sdist
COPY scripts/build_llama_tools.sh scripts/unpack_llama_converter.sh scripts/
RUN ASSAY_CACHE_DIR=/opt/assay-cache ASSAY_LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF ${LLAMA_CMAKE_ARGS}" \
    scripts/build_llama_tools.sh > /opt/venv/.assay-llama-tools \
    && ASSAY_CACHE_DIR=/opt/assay-cache scripts/unpack_llama_converter.sh > /opt/venv/.assay-llama-convert
# The dependencies, read from pyproject.toml alone (llama-cpp-python compiles here). The converter's
# torch is its CPU build (PyPI's default wheel is a CUDA build of several GB).
COPY pyproject.toml README.md ./
RUN python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + [d for e in ('server', 'runner', 'convert') for d in p['optional-dependencies'][e]]))" > /tmp/requirements.txt \
    && pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
# The code: seconds to rebuild
COPY assay assay
COPY registry registry
COPY verifier verifier
COPY runner runner
COPY manage.py ./
RUN pip install --no-cache-dir --no-deps -e .
ENV ASSAY_VAR_DIR=/data PYTHONUNBUFFERED=1
# Every service runs as an unprivileged user: the verifier executes model files from strangers (in a
# resource-limited child), and nothing here needs root. Named volumes mounted on /data and /verifier
# take these folders' owner when they are first created.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home assay \
    && mkdir -p /data /verifier && chown assay:assay /data /verifier
USER assay
EXPOSE 8000
CMD ["gunicorn", "registry.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--timeout", "600"]
