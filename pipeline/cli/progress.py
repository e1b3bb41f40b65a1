"""Progress bars that are right: on stderr, off when stderr is not a terminal, and never
past their total.

Why: a total is often an estimate (the simulator's citizen reports arrive at random), and
a bar reading 15145/14400 tells the user the tool is wrong. When the count passes the
estimate the total follows it; when the work ends the bar ends full at the real count.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pipeline.cli.common import err_console

__all__ = ["Bar", "track"]

_T = TypeVar("_T")


class Bar:
    """One task's bar; ``total`` None is an open-ended count."""

    def __init__(self, description: str, total: int | None, *, refresh: int = 1000) -> None:
        self.completed = 0
        self.total = total
        self._refresh = max(1, refresh)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
            disable=not err_console.is_terminal,
        )
        self._task: TaskID = self._progress.add_task(description, total=total, rate="")

    def __enter__(self) -> Bar:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.finish()
        self._progress.stop()

    def update(self, completed: int, *, rate: str | None = None, force: bool = False) -> None:
        """Set the count (the total grows with it, never below it)."""
        self.completed = completed
        if self.total is not None and completed > self.total:
            self.total = completed
        if force or completed % self._refresh == 0 or rate is not None:
            fields: dict[str, Any] = {} if rate is None else {"rate": rate}
            self._progress.update(self._task, completed=completed, total=self.total, **fields)

    def advance(self, count: int = 1) -> None:
        """Add to the count."""
        self.update(self.completed + count)

    def finish(self) -> None:
        """The work is done: the bar ends full, at the real count."""
        self.total = self.completed
        self._progress.update(self._task, completed=self.completed, total=self.total)


def track(items: Iterable[_T], bar: Bar) -> Iterator[_T]:
    """The items, counting each on ``bar`` as it is taken."""
    for item in items:
        bar.advance()
        yield item
