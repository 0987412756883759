"""`assay convert`: convert a Hugging Face checkpoint folder to a full-precision GGUF with llama.cpp's
own converter and write the recipe `assay publish` signs.

    assay convert HF_DIR -o model.f16.gguf [--outtype F16|BF16|F32] [--repository ORG/NAME --revision COMMIT]

Writes OUT (atomically) and OUT.recipe.json:
    {"recipe": {...ConversionRecipe.to_dict()...}, "output_digest": "sha256:...", "upstream_dir": "/abs/HF_DIR"}
`assay publish OUT ns/model:tag` then uploads the upstream files the recipe names (from
upstream_dir, or --upstream DIR) with the file, and a verifier converts them again: the same bytes
earn the level `converted`.
"""
from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from assay.core.conversion import OUTTYPES
from assay.toolchain.convert import convert as run_convert, make_recipe, select_upstream_files
from assay.core.digest import digest_file
from assay.core.errors import AssayError
from assay.cli.ui import SECONDS, console, json_option, out
from assay.cli.quantize import _write_json, recipe_path_for


@click.command("convert")
@click.argument("hf_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "-o", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output GGUF file.")
@click.option("--outtype", type=click.Choice(list(OUTTYPES), case_sensitive=False), default="F16", show_default=True,
              help="Tensor type of the output (full precision).")
@click.option("--repository", help="Where the checkpoint comes from (e.g. HuggingFaceTB/SmolLM2-135M): recorded in the recipe as a claim.")
@click.option("--revision", help="The upstream revision (commit) of those files: recorded in the recipe as a claim.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Leave out top-level files matching GLOB (repeatable).")
@click.option("--timeout", "timeout_s", type=SECONDS, default=6 * 3600, show_default=True, help="Wall-clock limit in seconds.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@json_option
def convert(hf_dir, out_path, outtype, repository, revision, exclude, timeout_s, force, as_json):
    """Convert the checkpoint in HF_DIR to OUT (GGUF) and write OUT.recipe.json for `assay publish`."""
    if out_path.exists() and not force:
        raise AssayError(f"{out_path} already exists (use --force to overwrite)")
    hf_dir = hf_dir.resolve()
    files = select_upstream_files(hf_dir, tuple(exclude))
    digests = {}
    for p in files:
        with console.status(f"hashing {escape(p.name)}"):
            digests[p.name] = digest_file(p)
    recipe = make_recipe(files, digests, outtype=outtype, directory=hf_dir.name, repository=repository, revision=revision)
    console.print(f"{len(files)} upstream files from {hf_dir}: {', '.join(p.name for p in files)}")  # markup off: printed as is
    with console.status(f"converting with llama.cpp's {escape('convert_hf_to_gguf.py')} to {recipe.ftype}"):
        result = run_convert(recipe, {p.name: p for p in files}, out_path, timeout_s=timeout_s)
    # The files must not have changed while they were converted: the recipe signs what was read.
    changed = [p.name for p in files if digest_file(p) != digests[p.name]]
    if changed:
        out_path.unlink(missing_ok=True)
        raise AssayError(f"{', '.join(changed)} changed during the conversion; nothing was written")
    output_digest = digest_file(out_path)
    rpath = recipe_path_for(out_path)
    _write_json(rpath, {"recipe": recipe.to_dict(), "output_digest": output_digest, "upstream_dir": str(hf_dir)})
    console.print(f"converted in {result['elapsed_s']:.1f}s")
    if as_json:
        out.print_json(data={"path": str(out_path), "digest": output_digest, "recipe_file": str(rpath), "recipe": recipe.to_dict(),
                             "upstream_dir": str(hf_dir), "elapsed_s": round(result["elapsed_s"], 2)})
        return
    out.print(f"{out_path}  {output_digest}\nrecipe {rpath}")
