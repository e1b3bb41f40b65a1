"""The chaos report: one row per fault, printed at the end of the session and written to
`data/chaos/report.md` (`make chaos`)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.chaos.compare import Tally
from tests.support.paths import ROOT

REPORT = ROOT / "data" / "chaos" / "report.md"


@dataclass(frozen=True)
class Row:
    fault: str
    records_in: int
    tally: Tally
    recover_s: float
    note: str = ""


ROWS: list[Row] = []

HEADER = ("fault", "records in", "lost", "duplicated", "mismatched", "recover (s)", "note")


def _cells(row: Row) -> list[str]:
    def per_family(counter: dict[str, int]) -> str:
        total = sum(counter.values())
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counter.items()) if v)
        return f"{total} ({parts})" if parts else "0"

    return [
        row.fault, f"{row.records_in:,}", per_family(row.tally.lost),
        per_family(row.tally.duplicated), per_family(row.tally.mismatched),
        f"{row.recover_s:.1f}", row.note,
    ]  # fmt: skip


def table() -> str:
    """The rows as a Markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in ROWS]
    return "\n".join(lines)


def write() -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        "# chaos report\n\nlost / mismatched must be 0; duplicates are counted per output "
        "family (incidents: versions on the city topic, audit: entries).\n"
        "recover: seconds from the end of the fault until every output equals the dry run.\n\n"
        + table() + "\n",
        encoding="utf-8",
    )  # fmt: skip
