"""`assay witness`: run a transparency-log witness (C2SP tlog-witness) over a state folder."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import click

from assay.cli.ui import console, json_option, out
from assay.client.witness import DEFAULT_PORT, Witness, serve

folder_argument = click.argument("directory", type=click.Path(file_okay=False, path_type=Path))


@click.group("witness")
def witness_group():
    """Cosign the checkpoints of logs you follow, after checking they only ever grow."""


@witness_group.command("init")
@folder_argument
@click.option("--name", required=True, help="The witness name, e.g. witness.example.org/w1 (no spaces or '+').")
@json_option
def witness_init(directory, name, as_json):
    """Make a witness key (mode 0600) and config in DIRECTORY; print the witness vkey."""
    witness = Witness.init(directory, name)
    if as_json:
        out.print_json(data={"witness": witness.name, "key": str(witness.key_path), "vkey": witness.vkey})
        return
    out.print(f"witness {witness.name}\nkey     {witness.key_path}\nvkey    {witness.vkey}")


@witness_group.command("add-log")
@folder_argument
@click.argument("vkey")
@click.option("--origin", help="The log's checkpoint origin line (default: the vkey's key name).")
@json_option
def witness_add_log(directory, vkey, origin, as_json):
    """Cosign checkpoints of the log whose checkpoints VKEY (name+keyid+key) signs."""
    origin = Witness(directory).add_log(vkey, origin)
    if as_json:
        out.print_json(data={"cosigning": origin, "vkey": vkey})
        return
    out.print(f"cosigning log {origin}")


@witness_group.command("show")
@folder_argument
@json_option
def witness_show(directory, as_json):
    """Print the witness name, vkey, and each log with its latest cosigned size."""
    witness = Witness(directory)
    latest = witness.latest()
    if as_json:
        logs = []
        for origin, vkey in sorted(witness.logs.items()):
            size, root = latest.get(origin, (None, None))
            logs.append({"origin": origin, "vkey": vkey, "size": size, "root": base64.b64encode(root).decode("ascii") if root is not None else None})
        out.print_json(data={"witness": witness.name, "vkey": witness.vkey, "logs": logs})
        return
    out.print(f"witness {witness.name}\nvkey    {witness.vkey}")
    for origin, vkey in sorted(witness.logs.items()):
        size, root = latest.get(origin, (None, None))
        seen = f"size {size} root {base64.b64encode(root).decode('ascii')}" if root is not None else "nothing cosigned yet"
        out.print(f"log     {origin}  {vkey}\n        {seen}")
    if not witness.logs:
        out.print("no logs: add one with `assay witness add-log DIR VKEY`")


@witness_group.command("serve")
@folder_argument
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True, help="Port (0: any free port).")
@click.option("--quiet", is_flag=True, help="Do not log each request on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Announce the listening address as one JSON line.")
def witness_serve(directory, host, port, quiet, as_json):
    """Answer POST /add-checkpoint (C2SP tlog-witness) until SIGTERM or Ctrl-C."""
    witness = Witness(directory)

    def announce(server):
        if as_json:
            out.file.write(json.dumps({"witness": witness.name, "url": f"{server.url}/add-checkpoint", "vkey": witness.vkey}) + "\n")
        else:
            out.print(f"witness {witness.name} listening on {server.url}/add-checkpoint\nvkey    {witness.vkey}")
        out.file.flush()

    serve(witness, host, port, quiet=quiet, announce=announce)
    console.print("witness stopped")
