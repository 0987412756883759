"""Plan a llama.cpp run from a hardware profile and a GGUF header: threads, GPU layers,
context size, mmap, and the memory it will take. A model that cannot fit is refused here,
with the numbers, before anything is loaded.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assay.core.errors import AssayError

from .hardware import HardwareProfile
from .hardware import busy_cores as measure_busy_cores

GiB = 1 << 30
MiB = 1 << 20
RUNTIME_OVERHEAD = 384 * MiB      # python + numpy + llama.cpp runtime, resident
AS_BASELINE = 3 * GiB             # virtual reservations: libs, thread stacks, malloc arenas
MIN_CTX = 256
DEFAULT_MAX_THREADS = 32
DEFAULT_N_BATCH = 512


class ModelTooLarge(AssayError):
    """The model (weights + KV cache + compute buffers) does not fit in this machine's memory."""


@dataclass
class ModelFacts:
    """What the planner needs from a GGUF header."""
    path: str
    file_size: int
    architecture: str
    tensor_bytes: int
    layer_bytes: list[int]          # bytes of blk.<i>.* tensors, per layer
    output_bytes: int               # output.weight (or the tied token embedding) + output_norm
    n_layer: int
    n_ctx_train: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    quantization: str = "unknown"

    def kv_bytes(self, n_ctx: int, layers: int | None = None) -> int:
        """f16 K and V cache for n_ctx positions over `layers` layers (default all)."""
        n = self.n_layer if layers is None else layers
        return n * n_ctx * self.n_head_kv * (self.head_dim_k + self.head_dim_v) * 2

    def compute_bytes(self, n_ctx: int, n_batch: int = DEFAULT_N_BATCH) -> int:
        """Rough llama.cpp compute-buffer size: logits + activations + attention scores of one ubatch."""
        ub = min(n_batch, n_ctx)
        return 4 * ub * (self.n_vocab + 8 * self.n_embd) + 4 * ub * n_ctx * self.n_head + 64 * MiB


def _meta_int(meta: dict, key: str, default: int | None = None) -> int | None:
    """ggufparse.metadata_int (per-layer arrays: their max), or `default` where the file holds none."""
    from assay.core.ggufparse import metadata_int

    value = metadata_int(meta, key)
    return default if value is None else value


def model_facts(path: str | os.PathLike) -> ModelFacts:
    """Read what the planner needs from the GGUF header (strict parser; no tensor data read)."""
    from assay.core.ggufparse import parse_gguf
    from assay.core.splits import sibling_parts

    info = parse_gguf(path)
    # A split GGUF: the first part holds the metadata, the tensors are spread over every part.
    later = [parse_gguf(p) for p in (sibling_parts(Path(path)) or [Path(path)])[1:]]
    tensors = [t for i in [info, *later] for t in i.tensors]
    meta = info.metadata
    arch = info.architecture or str(meta.get("general.architecture", "unknown"))
    n_layer = _meta_int(meta, f"{arch}.block_count", 0) or 0
    n_embd = _meta_int(meta, f"{arch}.embedding_length", 0) or 0
    n_head = _meta_int(meta, f"{arch}.attention.head_count", 1) or 1
    n_head_kv = _meta_int(meta, f"{arch}.attention.head_count_kv", n_head) or n_head
    head_k = _meta_int(meta, f"{arch}.attention.key_length", n_embd // n_head if n_head else 0) or 0
    head_v = _meta_int(meta, f"{arch}.attention.value_length", head_k) or head_k
    n_ctx_train = _meta_int(meta, f"{arch}.context_length", 2048) or 2048
    tokens = meta.get("tokenizer.ggml.tokens")
    n_vocab = _meta_int(meta, f"{arch}.vocab_size", len(tokens) if isinstance(tokens, list) else 32000) or 32000
    layer_bytes = [0] * n_layer
    output_bytes = 0
    tied = all(t.name != "output.weight" for t in tensors)
    for t in tensors:
        if t.name.startswith("blk."):
            try:
                i = int(t.name.split(".")[1])
            except ValueError:
                continue
            if 0 <= i < n_layer:
                layer_bytes[i] += t.nbytes
        elif t.name in ("output.weight", "output_norm.weight") or (tied and t.name == "token_embd.weight"):
            output_bytes += t.nbytes
    return ModelFacts(
        path=str(path), file_size=info.file_size + sum(i.file_size for i in later), architecture=arch,
        tensor_bytes=sum(t.nbytes for t in info.tensors), layer_bytes=layer_bytes,
        output_bytes=output_bytes, n_layer=n_layer, n_ctx_train=n_ctx_train, n_embd=n_embd,
        n_head=n_head, n_head_kv=n_head_kv, head_dim_k=head_k, head_dim_v=head_v, n_vocab=n_vocab,
        quantization=info.quantization,
    )


@dataclass
class Plan:
    n_threads: int
    n_gpu_layers: int
    n_ctx: int
    n_batch: int
    use_mmap: bool
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    est_ram_bytes: int
    est_vram_bytes: int
    address_space_limit: int | None   # RLIMIT_AS for the child; None with GPU offload
    # llama.cpp "extra buffer types" (weight repacking: AMX, AVX/NEON repack). Off on CPUs with
    # AMX: llama.cpp 0.3.36's AMX mat-mul (ggml_backend_amx_mul_mat) segfaults on quantized
    # weights on the AMX Xeons we test on.
    use_extra_bufts: bool = True
    # OpenMP threads spin at llama.cpp's barriers (OMP_WAIT_POLICY=ACTIVE). Spinning is the
    # fastest on cores nobody else uses and the slowest on shared ones, so the plan gives the
    # run only the cores that are free when it is planned (n_threads) and keeps spinning on
    # them; PASSIVE waits only on request (measured: README "Runner and GPUs").
    busy_wait: bool = True
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Plan":
        return cls(**data)


def _gib(n: int) -> str:
    return f"{n / GiB:.1f}"


def make_plan(
    profile: HardwareProfile,
    facts: ModelFacts,
    *,
    n_ctx: int = 2048,
    max_threads: int = DEFAULT_MAX_THREADS,
    use_gpu: bool = True,
    n_batch: int = DEFAULT_N_BATCH,
    extra_bufts: bool | None = None,
    busy_wait: bool = True,
    busy_cores: float | None = None,
) -> Plan:
    """Choose threads, GPU layers and context for `facts` on `profile`; raise ModelTooLarge.

    `busy_cores`: cores' worth of CPU other work is using now; None measures it (0.2 s)."""
    notes: list[str] = []
    n_threads = max(1, min(profile.physical_cores or profile.usable_cores or 1, max_threads))
    if busy_cores is None:
        busy_cores = measure_busy_cores()
    if busy_cores:
        free = max(1, int(profile.usable_cores - busy_cores + 0.5))
        if free < n_threads:
            notes.append(f"{busy_cores:.1f} of {profile.usable_cores} cores busy with other work: "
                         f"{free} thread{'s' if free > 1 else ''} instead of {n_threads}")
            n_threads = free
    want_ctx = max(1, int(n_ctx))
    if facts.n_ctx_train and want_ctx > facts.n_ctx_train:
        notes.append(f"n_ctx {want_ctx} capped to the trained context {facts.n_ctx_train}")
        want_ctx = facts.n_ctx_train
    weights = facts.tensor_bytes
    vram = profile.vram_free_bytes if use_gpu else 0
    vram_budget = max(0, vram - max(512 * MiB, vram // 10))
    ram = profile.ram_available_bytes

    def layout(ctx: int) -> tuple[int, int, int, int, int]:
        """(n_gpu_layers, ram_needed, vram_needed, kv, compute) for a context size."""
        kv = facts.kv_bytes(ctx)
        compute = facts.compute_bytes(ctx, n_batch)
        if vram_budget <= 0 or facts.n_layer == 0:
            return 0, weights + kv + compute + RUNTIME_OVERHEAD, 0, kv, compute
        full = sum(facts.layer_bytes) + facts.output_bytes + kv + compute
        if full <= vram_budget:
            on_gpu = sum(facts.layer_bytes) + facts.output_bytes
            return facts.n_layer + 1, weights - on_gpu + RUNTIME_OVERHEAD + compute // 4, full, kv, compute
        per_layer_kv = facts.kv_bytes(ctx, 1)
        used, k = compute, 0
        for lb in facts.layer_bytes:
            if used + lb + per_layer_kv > vram_budget:
                break
            used += lb + per_layer_kv
            k += 1
        if k == 0:
            return 0, weights + kv + compute + RUNTIME_OVERHEAD, 0, kv, compute
        on_gpu = sum(facts.layer_bytes[:k])
        ram_need = weights - on_gpu + facts.kv_bytes(ctx, facts.n_layer - k) + compute + RUNTIME_OVERHEAD
        return k, ram_need, used, kv, compute

    ctx = want_ctx
    ngl, ram_need, vram_need, kv, compute = layout(ctx)
    while ram_need > ram and ctx > MIN_CTX:
        ctx = max(MIN_CTX, ctx // 2)
        ngl, ram_need, vram_need, kv, compute = layout(ctx)
    if ram_need > ram:
        total_avail = ram + vram_budget
        raise ModelTooLarge(
            f"{Path(facts.path).name} does not fit: needs {_gib(weights + kv + compute + RUNTIME_OVERHEAD)} GiB "
            f"(weights {_gib(weights)} + KV {_gib(kv)} + compute {_gib(compute + RUNTIME_OVERHEAD)}) at n_ctx={ctx}, "
            f"{_gib(total_avail)} GiB available (RAM {_gib(ram)}"
            + (f" + VRAM {_gib(vram_budget)}" if vram_budget else "") + ")"
        )
    if ctx < want_ctx:
        notes.append(f"n_ctx reduced from {want_ctx} to {ctx} to fit in memory")
    if ngl:
        notes.append(f"offloading {min(ngl, facts.n_layer)}/{facts.n_layer} layers to GPU"
                     + (" and the output layer" if ngl > facts.n_layer else ""))
    # With the model mmap'd the file counts toward the address space; a GPU build (CUDA, ...)
    # reserves huge virtual ranges when its backend initialises, so no RLIMIT_AS there.
    as_limit = None if (ngl or profile.gpu_offload_supported) else facts.file_size + kv + 2 * compute + AS_BASELINE + n_threads * 16 * MiB
    if extra_bufts is None:
        extra_bufts = not any(f.startswith("amx") for f in profile.cpu_flags)
        if not extra_bufts:
            notes.append("weight repacking (extra buffer types) off: llama.cpp's AMX kernels crash on this CPU")
    return Plan(
        busy_wait=bool(busy_wait), use_extra_bufts=bool(extra_bufts), n_threads=n_threads, n_gpu_layers=ngl, n_ctx=ctx, n_batch=min(n_batch, ctx), use_mmap=True,
        weights_bytes=weights, kv_bytes=kv, compute_bytes=compute, est_ram_bytes=ram_need,
        est_vram_bytes=vram_need, address_space_limit=as_limit, notes=notes,
    )
