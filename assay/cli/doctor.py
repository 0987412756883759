"""`assay doctor [MODEL.gguf] [--ctx N] [--json]`: this machine's hardware profile and, for a
GGUF, the plan the runner would use (threads, GPU layers, context, memory) or why it refuses."""
from __future__ import annotations

import json
from pathlib import Path

import click

from assay.core.errors import AssayError

GiB = 1 << 30


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / GiB:.2f} GiB"


@click.command("doctor")
@click.argument("model", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ctx", "n_ctx", type=click.IntRange(1, 1 << 20), default=2048, show_default=True,
              help="Context size to plan for.")
@click.option("--json", "as_json", is_flag=True, help="Print the profile (and plan) as JSON.")
def doctor(model: Path | None, n_ctx: int, as_json: bool) -> None:
    """Show the hardware profile and what the runner would plan for MODEL."""
    from runner.hardware import detect_hardware
    from runner.plan import ModelTooLarge, make_plan, model_facts

    prof = detect_hardware()
    plan = refused = facts = None
    if model is not None:
        try:
            facts = model_facts(model)
            plan = make_plan(prof, facts, n_ctx=n_ctx)
        except ModelTooLarge as exc:
            refused = str(exc)
        except AssayError as exc:
            raise click.ClickException(str(exc))
    if as_json:
        doc = {"hardware": prof.to_dict()}
        if model is not None:
            doc["model"] = facts.__dict__ if facts else None
            doc["plan"] = plan.to_dict() if plan else None
            doc["refused"] = refused
        click.echo(json.dumps(doc, indent=2))
        if refused:
            raise SystemExit(1)
        return
    click.echo(f"CPU           {prof.cpu_model} ({prof.physical_cores} physical / {prof.usable_cores} usable / "
               f"{prof.logical_cores} logical cores)")
    click.echo(f"CPU flags     {' '.join(prof.cpu_flags) or '-'}")
    if prof.cgroup_cpu_quota is not None:
        click.echo(f"CPU quota     {prof.cgroup_cpu_quota:g} CPUs (cgroup)")
    click.echo(f"RAM           {_gib(prof.ram_available_bytes)} available of {_gib(prof.ram_total_bytes)}"
               + (f" (cgroup limit {_gib(prof.cgroup_memory_limit_bytes)})" if prof.cgroup_memory_limit_bytes else ""))
    if prof.gpus:
        for g in prof.gpus:
            click.echo(f"GPU {g.index}         {g.name}: {_gib(g.vram_free_bytes)} free of {_gib(g.vram_total_bytes)}")
    else:
        click.echo("GPU           none found")
    click.echo(f"GPU offload   {'supported' if prof.gpu_offload_supported else 'not in this llama.cpp build'}")
    if prof.llama_info_error:
        click.echo(f"llama.cpp     ERROR: {prof.llama_info_error}")
    else:
        click.echo(f"llama.cpp     llama-cpp-python {prof.llama_cpp_python_version}")
        click.echo(f"system info   {prof.llama_system_info}")
    if model is None:
        return
    click.echo("")
    click.echo(f"model         {model} ({facts.architecture}, {facts.quantization}, {facts.n_layer} layers, "
               f"trained context {facts.n_ctx_train})")
    if refused:
        click.echo(f"plan          REFUSED: {refused}")
        raise SystemExit(1)
    click.echo(f"plan          {plan.n_threads} threads, {plan.n_gpu_layers} GPU layers, n_ctx {plan.n_ctx}, "
               f"mmap {'on' if plan.use_mmap else 'off'}")
    click.echo(f"memory        RAM {_gib(plan.est_ram_bytes)} (weights {_gib(plan.weights_bytes)}, KV {_gib(plan.kv_bytes)}, "
               f"compute {_gib(plan.compute_bytes)}), VRAM {_gib(plan.est_vram_bytes)}")
    click.echo(f"limits        address space {_gib(plan.address_space_limit) if plan.address_space_limit else 'unlimited (GPU)'}")
    for note in plan.notes:
        click.echo(f"note          {note}")
