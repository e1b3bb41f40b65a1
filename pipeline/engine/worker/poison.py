"""Records that make a stateful stage fail: found, remembered, and dead-lettered alone.

Why across restarts: a batch that raises has half-changed the stage's cached states, and
the worker keeps no copy of what they were before (a second copy of every state costs more
memory than a city's worth of sensors allows). So a failed batch is never acknowledged:
the worker writes the batch's offsets to this log in its data directory as *suspects* and
exits (status 70); the restarted worker recovers clean states from the changelogs and
replays the batch one record at a time, each committed before the next; the record that
fails is the *poison*: written down, exit again; the next worker dead-letters it with
reason `processing_error` and the failure's digest, and everything else goes through. Two
restarts per poison record, whatever the batch size; a failure not tied to a record (the
SLA clock, an empty batch) still just exits, as a defect should.
"""

from __future__ import annotations

import hashlib
import os
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from pipeline.engine.emit import Record, partition_name

__all__ = ["PoisonLog", "failure_detail"]

#: Poison records remembered at most (the oldest are forgotten: long since dead-lettered).
MAX_POISON = 1000


def failure_detail(exc: BaseException) -> str:
    """What a poison record's dead letter says: the error and a digest of where it was
    raised (the same failure gives the same digest, so operators can group them)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = "|".join(f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in frames)
    digest = hashlib.sha256(f"{type(exc).__name__}|{where}".encode()).hexdigest()[:16]
    return f"{type(exc).__name__}: {str(exc)[:300]} (stack {digest})"


@dataclass
class PoisonLog:
    """The suspects and poison records of one worker, kept in a file of its data dir."""

    path: Path
    suspects: dict[str, list[int]] = field(default_factory=dict)
    """`topic:partition` -> [first, last] offsets of a batch that failed."""
    poison: dict[str, str] = field(default_factory=dict)
    """`topic:partition:offset` (`:element` for one reading of a batch) -> why it fails."""

    @classmethod
    def load(cls, path: Path) -> PoisonLog:
        """The log at `path` (empty when there is none, or it is unreadable)."""
        log = cls(path)
        try:
            data = orjson.loads(path.read_bytes())
            log.suspects = {str(k): [int(v[0]), int(v[1])] for k, v in data["suspects"].items()}
            log.poison = {str(k): str(v) for k, v in data["poison"].items()}
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            pass
        return log

    def save(self) -> None:
        """Write the log atomically (a crash leaves the old one or the new one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = orjson.dumps({"suspects": self.suspects, "poison": self.poison})
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(body)
        os.replace(temporary, self.path)

    @staticmethod
    def _name(record: Record) -> str:
        return partition_name(record.topic, record.partition or 0)

    def _key(self, record: Record) -> str:
        key = f"{self._name(record)}:{record.offset}"
        return key if record.element is None else f"{key}:{record.element}"

    def poisoned(self, record: Record) -> str | None:
        """Why `record` (a message, or one element of it) is known to fail, or None."""
        if not self.poison or record.offset is None:
            return None
        return self.poison.get(self._key(record))

    def _messages(self) -> set[str]:
        """The messages that hold a poison record (or element)."""
        return {":".join(key.split(":")[:3]) for key in self.poison}

    def careful(self, records: Sequence[Record]) -> bool:
        """Whether a batch holds a suspect or poison record (then it goes one at a time)."""
        if not self.suspects and not self.poison:
            return False
        messages = self._messages()
        for record in records:
            if record.offset is None:
                continue
            span = self.suspects.get(self._name(record))
            if span is not None and span[0] <= record.offset <= span[1]:
                return True
            if f"{self._name(record)}:{record.offset}" in messages:
                return True
        return False

    def suspect(self, records: Sequence[Record]) -> None:
        """A batch of these records failed: remember their offsets as suspects."""
        for record in records:
            if record.offset is None:
                continue
            name = self._name(record)
            span = self.suspects.setdefault(name, [record.offset, record.offset])
            span[0] = min(span[0], record.offset)
            span[1] = max(span[1], record.offset)
        self.save()

    def condemn(self, record: Record, exc: BaseException) -> None:
        """This record (or element) failed on its own: it is poison."""
        self.poison[self._key(record)] = failure_detail(exc)
        while len(self.poison) > MAX_POISON:
            del self.poison[next(iter(self.poison))]
        self.save()

    def cleared(self, records: Sequence[Record]) -> None:
        """These records went through (one at a time): their suspect spans are done."""
        done = False
        for record in records:
            if record.offset is None:
                continue
            span = self.suspects.get(self._name(record))
            if span is not None and record.offset >= span[1]:
                del self.suspects[self._name(record)]
                done = True
        if done:
            self.save()
