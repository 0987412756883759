"""Hardware profile of the machine the runner executes on.

Everything here is read from /proc, /sys, cgroups and (if present) nvidia-smi. What llama.cpp
itself reports (system info string, GPU offload support, version) is gathered in a child
process (`python -m runner.child` with op "info"), so a broken llama.cpp build cannot crash the
caller. The profile is a JSON-able dataclass; it goes into verdict evidence.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

FLAGS_OF_INTEREST = (
    "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni",
    "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_int8", "amx_bf16",
    # ARM (from "Features" in /proc/cpuinfo)
    "neon", "asimd", "asimddp", "sve", "sve2", "i8mm", "fphp", "asimdhp",
)


@dataclass
class GPUInfo:
    index: int
    name: str
    vram_total_bytes: int
    vram_free_bytes: int


@dataclass
class HardwareProfile:
    cpu_model: str
    cpu_flags: list[str]
    logical_cores: int          # CPUs the OS has
    usable_cores: int           # after sched_getaffinity and cgroup cpu quota
    physical_cores: int         # physical cores among the usable ones (best effort)
    cgroup_cpu_quota: float | None
    ram_total_bytes: int
    ram_available_bytes: int    # MemAvailable, lowered to the cgroup limit headroom if smaller
    cgroup_memory_limit_bytes: int | None
    gpus: list[GPUInfo] = field(default_factory=list)
    gpu_offload_supported: bool = False   # llama.cpp built with a GPU backend
    llama_system_info: str | None = None
    llama_cpp_python_version: str | None = None
    llama_info_error: str | None = None
    machine: str = ""
    os: str = ""
    python: str = ""

    @property
    def vram_free_bytes(self) -> int:
        """VRAM usable for offload: only when llama.cpp can offload at all."""
        if not self.gpu_offload_supported:
            return 0
        return sum(g.vram_free_bytes for g in self.gpus)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "HardwareProfile":
        data = dict(data)
        data["gpus"] = [GPUInfo(**g) for g in data.get("gpus", [])]
        return cls(**data)


# ---------------------------------------------------------------- CPU

def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _cpuinfo() -> tuple[str, list[str], int | None]:
    """(model name, flags of interest, physical cores among usable CPUs or None)."""
    text = _read("/proc/cpuinfo") or ""
    model, flags = "", set()
    usable = _affinity()
    cores: set[tuple[str, str]] = set()
    cur: dict[str, str] = {}

    def flush():
        if "processor" in cur and (usable is None or int(cur["processor"]) in usable):
            if "core id" in cur:
                cores.add((cur.get("physical id", "0"), cur["core id"]))
        cur.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        cur[key] = value
        if key in ("model name", "Model name", "Hardware", "cpu model") and not model:
            model = value
        elif key in ("flags", "Features"):
            flags.update(value.split())
    flush()
    if not model:
        model = platform.processor() or platform.machine()
    interesting = sorted(f for f in flags if f in FLAGS_OF_INTEREST)
    return model, interesting, (len(cores) or None)


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 cpu.max or v1 cfs quota), or None when unlimited."""
    text = _read("/sys/fs/cgroup/cpu.max")
    if text:
        parts = text.split()
        if parts and parts[0] != "max":
            return int(parts[0]) / int(parts[1] if len(parts) > 1 else 100000)
        return None
    q = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") or _read("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us")
    p = _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us") or _read("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us")
    if q and p and int(q) > 0:
        return int(q) / int(p)
    return None


def _cpu_ticks(cpus: set[int] | None) -> tuple[int, int] | None:
    """(busy, total) clock ticks since boot summed over `cpus` (every CPU when None), from the
    per-CPU lines of /proc/stat; idle and iowait count as not busy, steal as busy."""
    text = _read("/proc/stat")
    busy = total = 0
    for line in (text or "").splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or not name[3:].isdigit():
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        ticks = [int(v) for v in rest.split()[:8]]
        if len(ticks) < 5:
            continue
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - ticks[4]
    return (busy, total) if total else None


def _cgroup_cpu_usage_s() -> float | None:
    """CPU seconds used by this cgroup so far (v2 cpu.stat usage_usec, v1 cpuacct.usage)."""
    for line in (_read("/sys/fs/cgroup/cpu.stat") or "").splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec" and value.strip().isdigit():
            return int(value) / 1e6
    text = _read("/sys/fs/cgroup/cpuacct/cpuacct.usage") or _read("/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage")
    return int(text) / 1e9 if text and text.strip().isdigit() else None


def busy_cores(sample_s: float = 0.2) -> float | None:
    """How many cores' worth of the CPUs this process may run on are busy with other work,
    measured over the next `sample_s` seconds; None where it cannot be read (not Linux).

    Under a cgroup CPU quota it is the cgroup's own usage (the quota is what we may use); else
    the busy share of the CPUs in our affinity set, whoever uses them."""
    cpus = _affinity()
    quota = _cgroup_cpu_quota()
    ticks0, usage0, t0 = _cpu_ticks(cpus), _cgroup_cpu_usage_s(), time.monotonic()
    time.sleep(sample_s)
    ticks1, usage1, t1 = _cpu_ticks(cpus), _cgroup_cpu_usage_s(), time.monotonic()
    if quota is not None and usage0 is not None and usage1 is not None and t1 > t0:
        return max(0.0, (usage1 - usage0) / (t1 - t0))
    if ticks0 is None or ticks1 is None or ticks1[1] <= ticks0[1]:
        return None
    n_cpus = len(cpus) if cpus else (os.cpu_count() or 1)
    return max(0.0, n_cpus * (ticks1[0] - ticks0[0]) / (ticks1[1] - ticks0[1]))


# ---------------------------------------------------------------- memory

def _meminfo() -> tuple[int, int]:
    total = avail = 0
    for line in (_read("/proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            value = int(rest.split()[0]) * 1024
            if key == "MemTotal":
                total = value
            else:
                avail = value
    if not total:  # not Linux: fall back to sysconf
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            pass
    return total, avail or total


def _cgroup_memory() -> tuple[int | None, int | None]:
    """(limit, current usage) from cgroup v2 or v1; (None, None) when unlimited."""
    for limit_path, usage_path in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        text = _read(limit_path)
        if text is None:
            continue
        text = text.strip()
        if text == "max" or not text.isdigit() or int(text) >= 1 << 60:
            return None, None
        usage = _read(usage_path)
        return int(text), int(usage.strip()) if usage and usage.strip().isdigit() else None
    return None, None


# ---------------------------------------------------------------- GPUs

def _nvidia_gpus(timeout: float = 10.0) -> list[GPUInfo]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    return parse_nvidia_smi(out.stdout)


def parse_nvidia_smi(text: str) -> list[GPUInfo]:
    """Parse `nvidia-smi --query-gpu=index,name,memory.total,memory.free --format=csv,noheader,nounits`."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            continue
        try:
            gpus.append(GPUInfo(int(parts[0]), parts[1], int(float(parts[2])) << 20, int(float(parts[3])) << 20))
        except ValueError:
            continue
    return gpus


# ---------------------------------------------------------------- llama.cpp (in a child)

_LLAMA_INFO: dict | None = None  # the build does not change under a running process


def llama_info(timeout: float = 60.0) -> dict:
    """What the installed llama-cpp-python says about itself, gathered in a child process.

    Returns {"version", "system_info", "gpu_offload"} or {"error": "..."}.
    """
    from .sandbox import run_child  # local import: sandbox imports nothing from here at load

    global _LLAMA_INFO
    if _LLAMA_INFO is not None:
        return dict(_LLAMA_INFO)
    res = run_child({"op": "info"}, timeout_s=timeout)
    info = [r for r in res.records if r.get("type") == "info"]
    if res.status != "ok" or not info:
        return {"error": res.error or f"llama.cpp info child {res.status}"}
    _LLAMA_INFO = {k: info[0].get(k) for k in ("version", "system_info", "gpu_offload")}
    return dict(_LLAMA_INFO)


def detect_hardware(*, with_llama: bool = True, llama_timeout: float = 60.0) -> HardwareProfile:
    model, flags, physical = _cpuinfo()
    logical = os.cpu_count() or 1
    affinity = _affinity()
    usable = len(affinity) if affinity else logical
    quota = _cgroup_cpu_quota()
    if quota is not None:
        usable = max(1, min(usable, int(quota + 0.5) or 1))
    physical = min(physical or usable, usable)
    total, avail = _meminfo()
    cg_limit, cg_usage = _cgroup_memory()
    if cg_limit is not None:
        avail = min(avail, max(0, cg_limit - (cg_usage or 0)))
        total = min(total, cg_limit)
    prof = HardwareProfile(
        cpu_model=model, cpu_flags=flags, logical_cores=logical, usable_cores=usable,
        physical_cores=physical, cgroup_cpu_quota=quota, ram_total_bytes=total,
        ram_available_bytes=avail, cgroup_memory_limit_bytes=cg_limit,
        gpus=_nvidia_gpus(), machine=platform.machine(),
        os=f"{platform.system()} {platform.release()}", python=sys.version.split()[0],
    )
    if with_llama:
        info = llama_info(llama_timeout)
        if "error" in info:
            prof.llama_info_error = info["error"]
        else:
            prof.llama_system_info = info.get("system_info")
            prof.llama_cpp_python_version = info.get("version")
            prof.gpu_offload_supported = bool(info.get("gpu_offload"))
    return prof


if __name__ == "__main__":
    print(json.dumps(detect_hardware().to_dict(), indent=2))
