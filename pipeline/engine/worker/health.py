"""Liveness and readiness: ``GET /healthz`` and ``GET /readyz`` on the worker's web port.

Why two: a supervisor restarts a worker that is not *alive* (Kubernetes' liveness and
startup probes, compose's healthcheck), and only routes to, counts on, or waits for (a
rolling update) a worker that is *ready*. Restarting a worker because its store is down
or because it has no partition would not help, so those make it unready, never dead.

- Liveness: the handler runs on the worker's event loop, so an answer means the process
  and its loop are responsive; it fails (503) only once the app has crashed.
- Readiness (``readiness``, pure): every check below must pass.
  - ``partitions``: the Faust consumer group gave this worker partitions (a worker
    beyond the partition count gets none, and stays unready);
  - ``recovery``: no rebalance or table recovery in progress (the state is caught up
    with its changelogs, so batches are being processed);
  - ``intake``: the raw intake's consumer runs (its own consumer group shares the raw
    partitions; with no more workers than partitions every worker gets some);
  - ``store``: the aggregate store was initialised and its last write did not fail;
  - ``running``: the worker is not stopping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Check",
    "Readiness",
    "Signals",
    "consumer_view",
    "liveness",
    "readiness",
    "register",
    "signals_of",
]


@dataclass(frozen=True)
class Signals:
    """What readiness is decided from, read from the running worker (``signals_of``)."""

    assigned: int
    recovering: bool
    intake_state: str
    intake_assigned: int
    store_ready: bool
    store_failing: bool
    stopping: bool


@dataclass(frozen=True)
class Check:
    """One readiness check: whether it passes, and why, for the operator."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class Readiness:
    """Every check by name; ready when all pass."""

    checks: dict[str, Check]
    assigned: dict[str, int] = field(default_factory=dict)
    """Partitions held now: `agents` (the Faust consumer's) and `raw` (the raw intake's)."""

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in self.checks.items()},
            "assigned": dict(self.assigned),
        }


def readiness(s: Signals) -> Readiness:
    """The checks of the module docstring over ``s``."""
    intake_ok = s.intake_state == "running"
    if intake_ok:
        intake = f"running, {s.intake_assigned} raw partitions assigned"
    else:
        intake = f"the raw intake is {s.intake_state}"
    if not s.store_ready:
        store = "not initialised yet (unreachable or still starting)"
    elif s.store_failing:
        store = "the last write failed; retrying"
    else:
        store = "reachable"
    return Readiness(
        {
            "partitions": Check(s.assigned > 0, f"{s.assigned} partitions assigned"),
            "recovery": Check(
                not s.recovering,
                "rebalancing or recovering tables" if s.recovering else "caught up",
            ),
            "intake": Check(intake_ok, intake),
            "store": Check(s.store_ready and not s.store_failing, store),
            "running": Check(not s.stopping, "stopping" if s.stopping else "running"),
        },
        {"agents": s.assigned, "raw": s.intake_assigned},
    )


def liveness(app: Any) -> tuple[dict[str, Any], int]:
    """``/healthz``'s body and status: answering at all is the proof of a live loop."""
    if getattr(app, "crashed", False):
        return {"alive": False, "detail": "the worker crashed"}, 503
    return {"alive": True}, 200


def recovering(app: Any) -> bool:
    """Whether the Faust app is rebalancing or reading its changelogs: its tables may then
    hold part of the state (read defensively: before start there are no tables yet)."""
    recovery = getattr(getattr(app, "tables", None), "recovery", None)
    return bool(app.rebalancing or getattr(recovery, "in_recovery", False))


def signals_of(app: Any, intake: Any, writer: Any) -> Signals:
    """Read the signals from the Faust app, the raw intake (a mode Service with an aiokafka
    consumer) and the ``StoreWriter``. Faust's internals are read defensively: before the
    consumer starts, nothing is assigned yet."""
    consumer = getattr(intake, "consumer", None)
    return Signals(
        assigned=len(app.assignor.assigned_actives()),
        recovering=recovering(app),
        intake_state=str(intake.state),
        intake_assigned=len(consumer.assignment()) if consumer is not None else 0,
        store_ready=bool(writer.ready),
        store_failing=bool(getattr(writer, "failing", False)),
        stopping=bool(app.should_stop),
    )


def consumer_view(app: Any) -> dict[str, Any]:
    """The Faust consumer's view of its input partitions (``GET /consumer``): for each
    assigned partition that is not a changelog, the broker's end offset as the last fetch
    saw it (None: no fetch answered yet), the last offset handed to the agents, and whether
    it is paused; and whether the flow is on.

    Why: a ready worker that reads nothing from a partition with records on it looks idle
    from the outside; this tells a stuck fetch (no end offset, or paused) from an agent
    busy with a batch. Faust's internals are read defensively."""
    consumer = getattr(app, "consumer", None)
    if consumer is None:
        return {"partitions": {}, "flow_active": None}
    changelogs = set(getattr(app.tables, "changelog_topics", ()))
    paused = set(getattr(consumer, "_paused_partitions", ()) or ())
    read = getattr(consumer, "_read_offset", {}) or {}
    partitions: dict[str, Any] = {}
    try:
        assigned = consumer.assignment()
    except Exception:  # noqa: BLE001  # not started yet
        assigned = set()
    for tp in sorted(assigned):
        if tp.topic in changelogs:
            continue
        try:
            end = consumer.highwater(tp)
        except Exception:  # noqa: BLE001  # not fetched yet
            end = None
        partitions[f"{tp.topic}:{tp.partition}"] = {
            "end": end, "read": read.get(tp), "paused": tp in paused,
        }  # fmt: skip
    return {"partitions": partitions, "flow_active": getattr(consumer, "flow_active", None)}


def register(app: Any, intake: Any, writer: Any) -> None:
    """Serve ``/healthz``, ``/readyz`` and ``/consumer`` on the app's web server (JSON)."""

    @app.page("/healthz")  # type: ignore[untyped-decorator]  # faust is untyped
    async def healthz(web: Any, request: Any) -> Any:
        body, status = liveness(app)
        return web.json(body, status=status)

    @app.page("/readyz")  # type: ignore[untyped-decorator]  # faust is untyped
    async def readyz(web: Any, request: Any) -> Any:
        state = readiness(signals_of(app, intake, writer))
        return web.json(state.as_json(), status=200 if state.ready else 503)

    @app.page("/consumer")  # type: ignore[untyped-decorator]  # faust is untyped
    async def consumer_page(web: Any, request: Any) -> Any:
        return web.json(consumer_view(app))
