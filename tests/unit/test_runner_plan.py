"""Runner planning with synthetic hardware profiles and model facts (no model loaded)."""
from __future__ import annotations

import pytest

from runner.hardware import GPUInfo, HardwareProfile, parse_nvidia_smi
from runner.plan import GiB, MiB, ModelFacts, ModelTooLarge, make_plan


def profile(*, ram_gib=16.0, cores=8, gpus=(), offload=True, flags=("avx2", "fma")) -> HardwareProfile:
    return HardwareProfile(
        cpu_model="Synthetic CPU", cpu_flags=list(flags), logical_cores=cores * 2, usable_cores=cores * 2,
        physical_cores=cores, cgroup_cpu_quota=None, ram_total_bytes=int(ram_gib * GiB) * 2,
        ram_available_bytes=int(ram_gib * GiB), cgroup_memory_limit_bytes=None,
        gpus=[GPUInfo(i, "Synthetic GPU", int(v * GiB), int(v * GiB)) for i, v in enumerate(gpus)],
        gpu_offload_supported=offload,
    )


def llama_70b_like() -> ModelFacts:
    """~38 GiB of weights, 80 layers, GQA 8 KV heads of 128."""
    layer = int(0.46 * GiB)
    return ModelFacts(path="/models/big.Q4_K_M.gguf", file_size=80 * layer + int(1.3 * GiB), architecture="llama",
                      tensor_bytes=80 * layer + int(1.3 * GiB), layer_bytes=[layer] * 80, output_bytes=int(0.65 * GiB),
                      n_layer=80, n_ctx_train=8192, n_embd=8192, n_head=64, n_head_kv=8, head_dim_k=128,
                      head_dim_v=128, n_vocab=128256, quantization="Q4_K_M")


def small() -> ModelFacts:
    return ModelFacts(path="/models/small.gguf", file_size=100 * MiB, architecture="llama", tensor_bytes=96 * MiB,
                      layer_bytes=[2 * MiB] * 30, output_bytes=30 * MiB, n_layer=30, n_ctx_train=8192, n_embd=576,
                      n_head=9, n_head_kv=3, head_dim_k=64, head_dim_v=64, n_vocab=49152)


def test_kv_cache_bytes_f16():
    f = small()
    # 2 (K,V) * 30 layers * 2048 ctx * 3 kv heads * 64 dims * 2 bytes
    assert f.kv_bytes(2048) == 30 * 2048 * 3 * (64 + 64) * 2 == 47185920


def test_cpu_only_plan_uses_physical_cores_and_mmap():
    p = make_plan(profile(cores=6, offload=False), small(), n_ctx=1024, busy_wait=True)
    assert p.n_threads == 6 and p.n_gpu_layers == 0 and p.n_ctx == 1024 and p.use_mmap
    assert p.address_space_limit and p.address_space_limit > small().file_size + p.kv_bytes
    assert p.est_ram_bytes > p.weights_bytes + p.kv_bytes


def test_gpu_build_gets_no_address_space_limit():
    assert make_plan(profile(offload=True), small()).address_space_limit is None


def test_threads_capped():
    assert make_plan(profile(cores=128, ram_gib=64), small(), max_threads=16).n_threads == 16


def test_context_capped_by_trained_context():
    p = make_plan(profile(), small(), n_ctx=100_000)
    assert p.n_ctx == 8192 and any("trained context" in n for n in p.notes)


def test_everything_on_gpu_when_it_fits():
    p = make_plan(profile(gpus=(80,)), llama_70b_like(), n_ctx=4096)
    assert p.n_gpu_layers == 81  # all 80 layers + the output layer
    assert p.address_space_limit is None  # CUDA reserves large virtual ranges
    assert p.est_vram_bytes < 80 * GiB


def test_partial_offload_when_vram_is_short():
    p = make_plan(profile(gpus=(24,), ram_gib=64), llama_70b_like(), n_ctx=4096)
    assert 0 < p.n_gpu_layers < 80
    # what is on the GPU fits in the budget, one more layer would not
    f = llama_70b_like()
    per = f.layer_bytes[0] + f.kv_bytes(4096, 1)
    assert p.est_vram_bytes <= 24 * GiB - max(512 * MiB, int(2.4 * GiB)) < p.est_vram_bytes + per


def test_no_offload_when_llama_cpp_has_no_gpu_backend():
    p = make_plan(profile(gpus=(80,), offload=False, ram_gib=64), llama_70b_like())
    assert p.n_gpu_layers == 0 and p.address_space_limit


def test_refused_with_numbers():
    with pytest.raises(ModelTooLarge) as exc:
        make_plan(profile(ram_gib=23.4), llama_70b_like(), n_ctx=4096)
    msg = str(exc.value)
    assert "big.Q4_K_M.gguf does not fit" in msg
    assert "weights 38.1" in msg and "KV " in msg and "23.4 GiB available" in msg
    assert "\n" not in msg


def test_context_reduced_to_fit_before_refusing():
    f = llama_70b_like()
    need_small_ctx = f.tensor_bytes + f.kv_bytes(1024) + f.compute_bytes(1024) + 512 * MiB
    p = make_plan(profile(ram_gib=need_small_ctx / GiB), f, n_ctx=8192)
    assert p.n_ctx < 8192 and any("reduced" in n for n in p.notes)


def test_amx_cpus_turn_off_weight_repacking():
    assert make_plan(profile(flags=("avx512f", "amx_int8")), small()).use_extra_bufts is False
    assert make_plan(profile(), small()).use_extra_bufts is True


def test_profile_roundtrip_and_nvidia_smi_parsing():
    gpus = parse_nvidia_smi("0, NVIDIA H100 80GB HBM3, 81559, 80000\n1, NVIDIA L4, 23034, 22000\ngarbage\n")
    assert [g.name for g in gpus] == ["NVIDIA H100 80GB HBM3", "NVIDIA L4"]
    assert gpus[0].vram_total_bytes == 81559 * MiB
    prof = profile(gpus=(80,))
    assert HardwareProfile.from_dict(prof.to_dict()) == prof
    assert prof.vram_free_bytes == 80 * GiB
    assert profile(gpus=(80,), offload=False).vram_free_bytes == 0


def test_threads_are_the_free_cores():
    prof = profile(cores=4)  # 8 usable CPUs, 4 physical cores
    assert make_plan(prof, small(), busy_cores=0.0).n_threads == 4
    assert make_plan(prof, small(), busy_cores=0.4).n_threads == 4
    p = make_plan(prof, small(), busy_cores=6.0)
    assert p.n_threads == 2 and p.busy_wait
    assert any("6.0 of 8 cores busy with other work: 2 threads instead of 4" in n for n in p.notes)
    assert make_plan(prof, small(), busy_cores=7.9).n_threads == 1
    assert make_plan(prof, small(), busy_cores=20.0).n_threads == 1


def test_busy_cores_sees_a_busy_process():
    import subprocess
    import sys

    from runner.hardware import busy_cores

    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = busy_cores(0.5)
    finally:
        hog.kill()
        hog.wait()
    assert busy is not None and busy >= 0.6


def test_model_facts_of_a_file_whose_vocabulary_is_no_list(tmp_path):
    """`assay doctor` on a hostile file (tokenizer.ggml.tokens a number): facts, not a TypeError."""
    import numpy as np
    from gguf import GGUFWriter

    from runner.plan import model_facts

    w = GGUFWriter(str(tmp_path / "odd.gguf"), "llama")
    w.add_block_count(1)
    w.add_uint32("tokenizer.ggml.tokens", 16)
    w.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert model_facts(tmp_path / "odd.gguf").n_vocab == 32000
