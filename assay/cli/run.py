"""`assay run ns/model:tag "prompt"`: pull with every check, then run it through the runner."""
from __future__ import annotations

import click

from assay.client.config import cache_dir, resolve_registry
from assay.core.errors import AssayError
from assay.core.names import parse_reference
from assay.cli.ui import SECONDS, console, out, progress_factory, styled


@click.command()
@click.argument("reference")
@click.argument("prompt")
@click.option("--max-tokens", type=int, default=128, show_default=True)
@click.option("--chat/--raw", default=True, show_default=True, help="Apply the model's chat template.")
@click.option("--timeout", "timeout_s", type=SECONDS, default=600, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the output, the release, its level and chain as JSON.")
@click.option("--registry", "-r", envvar="ASSAY_REGISTRY")
def run(reference, prompt, max_tokens, chat, timeout_s, as_json, registry):
    """Run a verified model locally (greedy, sandboxed) after the same checks as `pull`."""
    from runner import run_prompts

    from assay.client.http import RegistryClient
    from assay.client.pull import level_lines, pull, summary

    url, token = resolve_registry(registry)
    ns, model, tag = parse_reference(reference)
    folder = cache_dir() / "models" / "verified" / ns / model / tag
    with RegistryClient(url, token) as client:
        # run's own cache: a file there from an older version of the tag is replaced
        path, verified = pull(client, reference, str(folder) + "/", None if as_json else progress_factory, notice=console.print, force=True)
    if not as_json:
        for line in level_lines(verified):
            console.print(line, soft_wrap=True)
    result = run_prompts(path, [prompt], max_tokens=max_tokens, timeout_s=timeout_s, chat=chat)
    item = result.results[0]
    if result.status != "ok" or item.status != "ok":
        detail = " ".join(str(item.error or result.error or "no details").split())
        raise AssayError(f"the model did not run: {detail} ({item.status if result.status == 'ok' else result.status})")
    if as_json:
        out.print_json(data={"text": item.text, "tokens_per_s": result.gen_tokens_per_s, **summary(verified, path)})
        return
    out.print(item.text, markup=False, highlight=False)
    out.print(styled((f"{verified.reference} v{verified.version}; {result.gen_tokens_per_s:.1f} tokens/s; "
                      f"threads {result.plan['n_threads']}, gpu layers {result.plan['n_gpu_layers']}", "dim")))
