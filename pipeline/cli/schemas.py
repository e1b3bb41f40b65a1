"""`cityops schemas export`: write (or check) the published contract in schemas/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from pipeline.cli.common import EXIT_RUNTIME, console, fail
from pipeline.contract import asyncapi_document, json_schemas

schemas_app = typer.Typer(help="The published contract of the output topics.", no_args_is_help=True)


def rendered() -> dict[str, str]:
    """File name -> exact file text, for every contract file."""
    files = {
        name: json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        for name, schema in json_schemas().items()
    }
    files["asyncapi.yaml"] = yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True, width=100
    )
    return files


@schemas_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Directory to write.")] = Path("schemas"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if any file is stale.")
    ] = False,
) -> None:
    """Regenerate the JSON Schemas and the AsyncAPI document from the models."""
    files = rendered()
    stale = [
        name
        for name, text in files.items()
        if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text
    ]
    if check:
        if stale:
            fail(f"stale contract files in {out}: {', '.join(stale)}", EXIT_RUNTIME)
        console.print(f"{len(files)} contract files in {out} are current")
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    console.print(f"wrote {len(files)} files to {out} ({len(stale)} changed)")
