"""``cityops incidents``: the current incidents, and a unit's actions on them.

Why: operators and units want the state of an incident now, not a replay of a topic
(``list`` and ``show`` ask a running worker's ``/incidents``), and a script acting for a
unit wants to know whether its action took (``ack``, ``resolve``, ``close``, ... send a
signed update and wait for its reply: exit 0 accepted, 1 refused or no reply, 2 bad
input). ``keygen`` makes a unit's key pair; ``contract`` regenerates the generated parts
of docs/incidents.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from rich.table import Table

from pipeline.cli.common import EXIT_RUNTIME, console, fail, open_topology
from pipeline.client import NoReply, UnitClient
from pipeline.contract import render_incident_doc
from pipeline.models import Incident, UnitAction, UpdateReply
from pipeline.rules.units import (
    generate_private_key,
    load_private_key,
    private_key_pem,
    public_key_text,
)
from pipeline.settings import Settings

__all__ = ["incidents_app"]

incidents_app = typer.Typer(
    help="Current incidents (from a worker) and a unit's signed actions on them.",
    no_args_is_help=True,
)

HTTP_TIMEOUT = 10.0
DOC = Path("docs/incidents.md")

WorkerOption = Annotated[
    str | None,
    typer.Option(help="Worker base URL (default: http://127.0.0.1:<CITYOPS_WEB_PORT or 6066>)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]


@incidents_app.callback()
def _group() -> None:
    """Current incidents (from a worker) and a unit's signed actions on them."""


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        fail(f"bad settings: {exc}")


def get_json(base_url: str, path: str, params: dict[str, str] | None = None) -> Any:
    """GET a worker endpoint as JSON; exit 1 with the worker's words when it fails."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        fail(f"--worker must be an http(s) URL, got {base_url!r}")
    query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v})
    url = f"{base_url.rstrip('/')}{path}" + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:  # noqa: S310  # scheme checked above
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        answer = exc.read().decode("utf-8", "replace")[:300]
        fail(f"worker at {base_url} answered {exc.code}: {answer}", EXIT_RUNTIME)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        fail(f"no answer from a worker at {base_url}: {exc}", EXIT_RUNTIME)


def _worker_url(worker: str | None) -> str:
    return worker or f"http://127.0.0.1:{_settings().web_port}"


def incidents_table(incidents: list[Incident], title: str) -> Table:
    """Incidents as a rich table."""
    table = Table(title=title)
    for column in ("incident", "severity", "state", "owner", "rule", "subject", "opened (UTC)"):
        table.add_column(column)
    for incident in incidents:
        table.add_row(
            incident.incident_id,
            str(incident.severity),
            str(incident.state),
            f"{incident.owner_level} {incident.owner_area}",
            incident.rule_id,
            incident.subject,
            incident.opened_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    return table


@incidents_app.command("list")
def list_command(
    area: Annotated[str | None, typer.Option(help="Area code: incidents in that area.")] = None,
    state: Annotated[str | None, typer.Option(help="State(s), comma-separated.")] = None,
    severity: Annotated[str | None, typer.Option(help="Severity(ies), comma-separated.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Incidents per page.")] = 50,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
    worker: WorkerOption = None,
    as_json: JsonOption = False,
) -> None:
    """The worker's current incidents, newest opened first."""
    url = _worker_url(worker)
    params = {"area": area or "", "state": state or "", "severity": severity or ""}
    params["limit"] = str(limit)
    found: list[Incident] = []
    total = 0
    while True:
        page = get_json(url, "/incidents", params)
        found += [Incident.model_validate(doc) for doc in page["incidents"]]
        total = int(page["total"])
        if not (all_pages and page.get("next")):
            break
        params["after"] = str(page["next"])
    if as_json:
        for incident in found:
            typer.echo(incident.model_dump_json())
        return
    console.print(incidents_table(found, f"{len(found)} of {total} incidents from {url}"))


@incidents_app.command("show")
def show_command(
    incident_id: Annotated[str, typer.Argument(help="The incident id (inc-...).")],
    worker: WorkerOption = None,
    as_json: JsonOption = False,
) -> None:
    """One incident's current state."""
    url = _worker_url(worker)
    path = "/incidents/" + urllib.parse.quote(incident_id, safe="")
    incident = Incident.model_validate(get_json(url, path)["incident"])
    if as_json:
        typer.echo(incident.model_dump_json())
        return
    table = Table(title=incident.incident_id, show_header=False)
    table.add_column("field")
    table.add_column("value")
    for name, value in incident.model_dump(mode="json").items():
        table.add_row(name, value if isinstance(value, str) else json.dumps(value))
    console.print(table)


def _act(action: UnitAction) -> Any:
    def command(
        incident_id: Annotated[str, typer.Argument(help="The incident id (inc-...).")],
        topology: Annotated[Path, typer.Option("--topology", "-t", help="Topology YAML file.")],
        unit: Annotated[
            str, typer.Option(help="The acting unit, as listed in the topology's unit keys.")
        ],
        key: Annotated[
            Path | None,
            typer.Option(help="The unit's private key, PEM (default: CITYOPS_UNIT_KEY_FILE)."),
        ] = None,
        note: Annotated[str | None, typer.Option(help="A note for the audit trail.")] = None,
        bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers.")] = None,
        timeout: Annotated[float, typer.Option(help="Seconds to wait for the reply.")] = 30.0,
        as_json: JsonOption = False,
    ) -> None:
        settings = _settings(kafka_bootstrap_servers=bootstrap)
        topo = open_topology(topology, settings)
        private_key = _private_key(key)
        reply = _send(settings, topo.topics.prefix, unit, private_key, incident_id, action, note,
                      timeout)  # fmt: skip
        _print_reply(reply, as_json)
        if not reply.accepted:
            raise typer.Exit(EXIT_RUNTIME)

    command.__doc__ = f"Send a signed `{action}` update and wait for its reply."
    return command


def _private_key(path: Path | None) -> Ed25519PrivateKey:
    named = os.environ.get("CITYOPS_UNIT_KEY_FILE")
    where = path or (Path(named) if named else None)
    if where is None:
        fail("--key: the unit's private key file is needed (or CITYOPS_UNIT_KEY_FILE)")
    try:
        return load_private_key(where.read_bytes())
    except OSError as exc:
        fail(f"--key: cannot read {where}: {exc.strerror or exc}")
    except (ValueError, TypeError):
        fail(f"--key: {where} is not an Ed25519 private key in PEM")


def _send(
    settings: Settings,
    prefix: str,
    unit: str,
    private_key: Ed25519PrivateKey,
    incident_id: str,
    action: UnitAction,
    note: str | None,
    timeout: float,
) -> UpdateReply:
    async def run() -> UpdateReply:
        async with UnitClient(settings, prefix=prefix, unit=unit, private_key=private_key) as c:
            return await c.send(incident_id, action, note=note, timeout=timeout)

    try:
        return asyncio.run(run())
    except ValidationError as exc:
        fail(f"not a valid update: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    except NoReply as exc:
        fail(str(exc), EXIT_RUNTIME)
    except (KafkaError, OSError) as exc:
        fail(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}", EXIT_RUNTIME)


def _print_reply(reply: UpdateReply, as_json: bool) -> None:
    if as_json:
        typer.echo(reply.model_dump_json())
    elif reply.accepted:
        console.print(
            f"[green]accepted[/] {reply.action} of {reply.incident_id}: now {reply.state} "
            f"(version {reply.version})",
            highlight=False,
        )
    else:
        console.print(
            f"[red]refused[/] ({reply.reason}) {reply.action} of {reply.incident_id}: "
            f"{reply.detail}",
            highlight=False,
        )


for _name, _action in (
    ("ack", UnitAction.acknowledge),
    ("dispatch", UnitAction.dispatch),
    ("resolve", UnitAction.resolve),
    ("close", UnitAction.close),
    ("reopen", UnitAction.reopen),
    ("comment", UnitAction.comment),
):
    incidents_app.command(_name)(_act(_action))


@incidents_app.command("keygen")
def keygen_command(
    unit: Annotated[str, typer.Option(help="The unit id, e.g. 310101/urban-management.")],
    out: Annotated[Path, typer.Option(help="Where to write the private key (PEM).")],
) -> None:
    """Make a unit's key pair: the private key to `out`, the keys-file entry to stdout."""
    if out.exists():
        fail(f"--out: {out} exists; not overwriting a key")
    private_key = generate_private_key()
    try:
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(private_key_pem(private_key))
    except OSError as exc:
        fail(f"--out: cannot write {out}: {exc.strerror or exc}")
    typer.echo(f"  - id: {unit}\n    public_key: {public_key_text(private_key)}")


@incidents_app.command("contract")
def contract_command(
    doc: Annotated[Path, typer.Option(help="The incident contract page.")] = DOC,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if the page is stale.")
    ] = False,
) -> None:
    """Regenerate the parts of docs/incidents.md that come from the code."""
    try:
        text = doc.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {doc}: {exc.strerror or exc}")
    fresh = render_incident_doc(text)
    if check:
        if fresh != text:
            fail(f"{doc} is stale: run cityops incidents contract", EXIT_RUNTIME)
        console.print(f"{doc} is current")
        return
    doc.write_text(fresh, encoding="utf-8")
    console.print(f"{doc}: {'rewritten' if fresh != text else 'already current'}")
