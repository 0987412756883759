"""`assay quantize`: quantize a base GGUF with llama.cpp and write the recipe `assay publish` signs.

    assay quantize BASE.gguf --type Q4_K_M -o OUT.gguf [--threads N] [--pure] [--imatrix FILE] ...

Writes OUT.gguf (atomically) and OUT.gguf.recipe.json:
    {"recipe": {...Recipe.to_dict()...}, "base_digest": "sha256:...", "output_digest": "sha256:...",
     "imatrix_file": "/abs/path" (with --imatrix: where `assay publish` finds the file to upload)}
With --imatrix the quantization runs llama.cpp's own llama-quantize (assay.toolchain.llama_tools); the
importance matrix is part of the release (its digest signed in the recipe, the file uploaded).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click
from rich.markup import escape

from assay.core.digest import digest_file
from assay.core.errors import AssayError
from assay.core.recipe import FTYPES, GGML_TYPES, IMATRIX_REQUIRED, Recipe, check_split_option
from assay.toolchain.quantize import current_build_id, quantize as run_quantize, recipe_for_this_machine
from assay.core.splits import parse_split_name
from assay.toolchain.gguf_split import split_file
from assay.cli.ui import SECONDS, console, json_option, out

_FTYPE_CHOICES = list(FTYPES)
_TENSOR_TYPES = click.Choice(list(GGML_TYPES), case_sensitive=False)


def recipe_path_for(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".recipe.json")


def write_recipe_file(path: Path, recipe: Recipe, base_digest: str, output_digest: str, imatrix_file: Path | None = None,
                      calibration_file: str | None = None) -> None:
    doc = {"recipe": recipe.to_dict(), "base_digest": base_digest, "output_digest": output_digest}
    if imatrix_file is not None:
        doc["imatrix_file"] = str(imatrix_file.resolve())
    if calibration_file is not None:
        doc["calibration_file"] = calibration_file
    _write_json(path, doc)


def _write_json(path: Path, doc: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parse_tensor_type(values: tuple[str, ...]) -> list[tuple[str, str]]:
    rules = []
    for v in values:
        pattern, sep, tname = v.rpartition("=")
        if not sep or not pattern or tname.upper() not in GGML_TYPES:
            raise click.BadParameter(f"{v!r}: expected REGEX=TYPE with TYPE one of {', '.join(GGML_TYPES)}", param_hint="--tensor-type")
        rules.append((pattern, tname.upper()))
    return rules


@click.command("quantize")
@click.argument("base", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--type", "-t", "ftype", required=True, type=click.Choice(_FTYPE_CHOICES, case_sensitive=False), help="Target quantization (llama.cpp ftype).")
@click.option("--out", "-o", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output GGUF file.")
@click.option("--threads", type=click.IntRange(0, 1024), default=0, show_default=True, help="Quantization threads (0 = all cores); recorded, does not change the bytes.")
@click.option("--output-tensor-type", type=_TENSOR_TYPES, help="Tensor type for output.weight.")
@click.option("--token-embedding-type", type=_TENSOR_TYPES, help="Tensor type for token_embd.weight.")
@click.option("--pure", is_flag=True, help="Quantize every tensor to the base type of --type (no k-quant mixture).")
@click.option("--leave-output-tensor", is_flag=True, help="Do not quantize output.weight.")
@click.option("--allow-requantize", is_flag=True, help="Allow a base that is already quantized.")
@click.option("--tensor-type", "tensor_types", multiple=True, metavar="REGEX=TYPE", help="Per-tensor type override (repeatable, first match wins).")
@click.option("--timeout", "timeout_s", type=SECONDS, default=6 * 3600, show_default=True, help="Wall-clock limit in seconds.")
@click.option("--imatrix", "imatrix_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Importance matrix (from llama-imatrix); runs llama.cpp's llama-quantize and becomes an input of the release.")
@click.option("--split-max-tensors", type=click.IntRange(1, 1_000_000), help="Cut the quant into a split GGUF of at most N tensors a part.")
@click.option("--split-max-size", metavar="SIZE", help="Cut the quant into a split GGUF of at most SIZE a part (e.g. 500M, 2G).")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@json_option
def quantize(base, ftype, out_path, threads, output_tensor_type, token_embedding_type, pure, leave_output_tensor,
                 allow_requantize, tensor_types, imatrix_file, timeout_s, split_max_tensors, split_max_size, force, as_json):
    """Quantize BASE with llama.cpp and write OUT plus OUT.recipe.json for `assay publish`.

    With --split-max-tensors or --split-max-size, OUT becomes llama.cpp's split GGUF: parts named
    <OUT without .gguf>-00001-of-0000N.gguf ... (made by llama-gguf-split), the recipe beside the first."""
    split = None
    if split_max_tensors is not None and split_max_size is not None:
        raise AssayError("give one of --split-max-tensors and --split-max-size, not both")
    if split_max_tensors is not None or split_max_size is not None:
        split = {"max_tensors": split_max_tensors} if split_max_tensors is not None else {"max_size": split_max_size.upper()}
        check_split_option(split)
        if not out_path.name.endswith(".gguf") or parse_split_name(out_path.name):
            raise AssayError(f"name the split output PREFIX.gguf (the parts become PREFIX-00001-of-0000N.gguf), not {out_path.name}")
    if out_path.exists() and not force:
        raise AssayError(f"{out_path} already exists (use --force to overwrite)")
    if out_path.resolve() == base.resolve():
        raise AssayError("the output file must not be the base file")
    if ftype.upper() in IMATRIX_REQUIRED and imatrix_file is None:
        raise AssayError(f"{ftype.upper()} needs an importance matrix: pass --imatrix FILE (made by llama-imatrix)")
    imatrix, calibration_file, source = {}, None, None
    if imatrix_file is not None:
        with console.status(f"hashing {escape(imatrix_file.name)}"):
            imatrix = {"imatrix": digest_file(imatrix_file), "imatrix_name": imatrix_file.name}
        source = _imatrix_source(imatrix_file, imatrix["imatrix"])
        if source is not None:  # made by `assay imatrix`: a verifier can compute it again
            imatrix["imatrix_source"], calibration_file = source["source"], source.get("calibration_file")
    recipe = recipe_for_this_machine(
        ftype.upper(), nthread=threads,
        output_tensor_type=output_tensor_type.upper() if output_tensor_type else None,
        token_embedding_type=token_embedding_type.upper() if token_embedding_type else None,
        pure=pure, allow_requantize=allow_requantize, quantize_output_tensor=not leave_output_tensor,
        tensor_types=_parse_tensor_type(tensor_types), split=split, **imatrix,
    )
    console.print(f"llama.cpp build: {current_build_id()}")
    with console.status(f"hashing {escape(base.name)}"):  # a spinner's text is always read as markup
        base_digest = digest_file(base)
    if source is not None and source.get("base_digest") != base_digest:
        raise AssayError(f"{imatrix_file.name} was computed from another model than {base.name}; "
                         "a matrix computed on this base (assay imatrix) can be rebuilt by a verifier")
    console.print(f"base {base.name}  {base_digest}")
    single = out_path.with_name(f".{out_path.name}.unsplit") if split else out_path
    with console.status(f"quantizing to {recipe.ftype} ({threads or 'all'} threads)"):
        result = run_quantize(base, single, recipe, timeout_s=timeout_s, imatrix_path=imatrix_file)
    parts = [out_path]
    if split:
        try:
            with console.status("splitting with llama-gguf-split"):
                parts = split_file(single, out_path, timeout_s=timeout_s, **split)
        finally:
            single.unlink(missing_ok=True)
    digests = [digest_file(p) for p in parts]
    rpath = recipe_path_for(parts[0])
    write_recipe_file(rpath, recipe, base_digest, digests[0], imatrix_file, calibration_file)
    console.print(f"quantized in {result['elapsed_s']:.1f}s" + (f", split into {len(parts)} parts" if split else ""))
    if as_json:
        out.print_json(data={"files": [{"path": str(p), "digest": d} for p, d in zip(parts, digests)], "recipe_file": str(rpath),
                             "recipe": recipe.to_dict(), "base_digest": base_digest, "elapsed_s": round(result["elapsed_s"], 2)})
        return
    out.print("\n".join(f"{p}  {d}" for p, d in zip(parts, digests)) + f"\nrecipe {rpath}")


def source_path_for(imatrix_file: Path) -> Path:
    return imatrix_file.with_name(imatrix_file.name + ".source.json")


def _imatrix_source(imatrix_file: Path, digest: str) -> dict | None:
    """The record `assay imatrix` wrote beside the matrix, if it is this matrix's."""
    try:
        doc = json.loads(source_path_for(imatrix_file).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("imatrix_digest") == digest and isinstance(doc.get("source"), dict) else None


@click.command("imatrix")
@click.argument("base", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--calibration", "-f", "calibration", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Calibration text (its bare file name is recorded in the matrix).")
@click.option("--out", "-o", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output matrix (GGUF).")
@click.option("--ctx", type=click.IntRange(8, 1 << 20), default=512, show_default=True, help="Tokens per chunk.")
@click.option("--chunks", type=click.IntRange(1, 1 << 20), default=100, show_default=True, help="Chunks of the text evaluated.")
@click.option("--threads", type=click.IntRange(0, 1024), default=0, show_default=True, help="CPU threads (0 = llama.cpp's default); the matrix does not depend on it.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@json_option
def imatrix(base, calibration, out_path, ctx, chunks, threads, force, as_json):
    """Compute an importance matrix for BASE from a calibration text with llama.cpp's llama-imatrix
    (on the CPU), and record how (OUT.source.json) so that `assay quantize --imatrix OUT` can sign
    it and a verifier can compute it again."""
    from assay.core.recipe import ImatrixSource
    from assay.toolchain.imatrix import compute_imatrix

    if out_path.exists() and not force:
        raise AssayError(f"{out_path} already exists (use --force to overwrite)")
    with console.status(f"hashing {escape(base.name)} and {escape(calibration.name)}"):
        base_digest, calibration_digest = digest_file(base), digest_file(calibration)
    source = ImatrixSource(calibration_digest, calibration.name, ctx, chunks)
    with console.status(f"computing the importance matrix ({chunks} chunks of {ctx} tokens)"):
        compute_imatrix(base, calibration, out_path, ctx=ctx, chunks=chunks, threads=threads)
    matrix_digest = digest_file(out_path)
    _write_json(source_path_for(out_path), {"source": source.to_dict(), "base_digest": base_digest, "imatrix_digest": matrix_digest,
                                            "calibration_file": str(calibration.resolve())})
    if as_json:
        out.print_json(data={"path": str(out_path), "digest": matrix_digest, "source_file": str(source_path_for(out_path)),
                             "source": source.to_dict(), "base_digest": base_digest})
        return
    out.print(f"{out_path}  {matrix_digest}\nsource {source_path_for(out_path)}")


# assay.cli registers `quantize` and `imatrix`; `quantize_cmd` is an alias for tests
quantize_cmd = quantize
