"""What an agent does when its batch fails: exit before Faust acknowledges the batch.

Why: when the body of a Faust `take_events()` batch raises, Faust still acknowledges the
batch and commits its offsets, so whatever the batch had not yet sent or stored would be
lost. Stages never raise for bad input (it is dead-lettered) and outage paths retry, so an
exception here is a defect or an unknown failure: exiting without the acknowledgement lets
a restart (the supervisor's job) replay the batch instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator, Sequence

from pipeline.engine.emit import Record
from pipeline.engine.worker.poison import PoisonLog
from pipeline.errors import StoppedMidBatch

#: Exit status of a worker that stopped because a batch failed (EX_SOFTWARE).
EXIT_BATCH_FAILED = 70
#: Exit status of a worker asked to stop while a batch waited for an unavailable
#: dependency (EX_TEMPFAIL): the batch is replayed by the next worker.
EXIT_STOPPED_MID_BATCH = 75

__all__ = [
    "EXIT_BATCH_FAILED",
    "EXIT_STOPPED_MID_BATCH",
    "exit_if_stop_hangs",
    "StoppedMidBatch",
    "blaming_records",
    "unacknowledged_on_failure",
]


@contextlib.contextmanager
def blaming_records(agent: str, poison: PoisonLog, records: Sequence[Record]) -> Iterator[None]:
    """Exit (unacknowledged) when the stages fail on `records`, blaming them first.

    Only the pure stages' work belongs inside: their failure is tied to the records (a
    batch becomes suspect, a single record poison, see `PoisonLog`). A failure while
    sending or storing the outputs is not the records' fault: `unacknowledged_on_failure`
    handles it.
    """
    try:
        yield
    except Exception as exc:
        if len(records) == 1:
            poison.condemn(records[0], exc)
            blame = "that record is poison: the next worker dead-letters it"
        else:
            poison.suspect(records)
            blame = (
                f"its {len(records)} records are suspects: the next worker takes them one by one"
            )
        log = logging.getLogger("pipeline.engine.worker")
        log.critical(
            "the %s agent's batch failed; %s; exiting before it is acknowledged",
            agent,
            blame,
            exc_info=True,
        )
        logging.shutdown()
        os._exit(EXIT_BATCH_FAILED)


@contextlib.asynccontextmanager
async def unacknowledged_on_failure(agent: str) -> AsyncIterator[None]:
    """Exit the process when an agent's batch fails unexpectedly, before Faust acknowledges it.

    A stop requested while a batch waits for a dependency that is down exits with
    `EXIT_STOPPED_MID_BATCH`, also unacknowledged (Faust's warm shutdown would wait for
    that batch forever). Cancellation passes through.
    """
    try:
        yield
    except StoppedMidBatch as exc:
        log = logging.getLogger("pipeline.engine.worker")
        log.warning(
            "stopping with the %s agent's batch unfinished (%s); it is not acknowledged, so"
            " the next worker replays it",
            agent,
            exc,
        )
        logging.shutdown()
        os._exit(EXIT_STOPPED_MID_BATCH)
    except Exception:
        log = logging.getLogger("pipeline.engine.worker")
        log.critical(
            "the %s agent's batch failed; exiting before it is acknowledged, so a restart"
            " replays it",
            agent,
            exc_info=True,
        )
        logging.shutdown()
        os._exit(EXIT_BATCH_FAILED)


def exit_if_stop_hangs(seconds: float) -> threading.Timer:
    """Arm a deadline for a stop that has begun: past it, exit with `EXIT_STOPPED_MID_BATCH`.

    Why: a warm shutdown waits on the broker (the group's leave, the consumers' commits,
    the producers' flush), and while the broker is unreachable aiokafka retries those
    without end, so a SIGTERM during an outage would never end the worker. Exiting
    unacknowledged is safe: whatever was not committed is replayed by the next worker.
    """

    def expire() -> None:
        log = logging.getLogger("pipeline.engine.worker")
        log.warning(
            "the stop did not finish within %.0f s (is the broker unreachable?); exiting"
            " with status %d: what was not acknowledged is replayed by the next worker",
            seconds,
            EXIT_STOPPED_MID_BATCH,
        )
        logging.shutdown()
        os._exit(EXIT_STOPPED_MID_BATCH)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer
