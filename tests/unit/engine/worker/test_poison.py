"""The poison log: a failed batch's records become suspects, a record failing alone
becomes poison, and both survive a restart (they live in a file)."""

from __future__ import annotations

from pathlib import Path

from pipeline.engine.emit import Record
from pipeline.engine.worker.poison import PoisonLog, failure_detail


def _record(offset: int, element: int | None = None, partition: int = 1) -> Record:
    return Record("city.readings", b"310101", b"{}", (), partition, offset, None, element)


def _raised() -> BaseException:
    try:
        msg = "planted"
        raise RuntimeError(msg)
    except RuntimeError as exc:
        return exc


def test_a_failed_batch_makes_its_records_suspects_across_a_restart(tmp_path: Path) -> None:
    log = PoisonLog.load(tmp_path / "poison.json")
    assert not log.careful([_record(5)])
    log.suspect([_record(4), _record(5), _record(9)])
    again = PoisonLog.load(tmp_path / "poison.json")
    assert again.careful([_record(5)]) and again.careful([_record(9)])
    assert not again.careful([_record(10)]) and not again.careful([_record(5, partition=2)])
    again.cleared([_record(4), _record(5), _record(9)])
    assert not PoisonLog.load(tmp_path / "poison.json").careful([_record(5)])


def test_a_record_failing_alone_is_poison_down_to_its_element(tmp_path: Path) -> None:
    log = PoisonLog.load(tmp_path / "poison.json")
    exc = _raised()
    log.condemn(_record(7, element=3), exc)
    again = PoisonLog.load(tmp_path / "poison.json")
    assert again.careful([_record(7)])  # the message holds poison: go one by one
    assert again.poisoned(_record(7, element=3)) == failure_detail(exc)
    assert again.poisoned(_record(7, element=2)) is None
    assert again.poisoned(_record(7)) is None


def test_the_detail_names_the_error_and_a_stable_digest_of_where() -> None:
    first, second = _raised(), _raised()
    assert failure_detail(first) == failure_detail(second)
    assert failure_detail(first).startswith("RuntimeError: planted (stack ")


def test_an_unreadable_log_is_an_empty_one(tmp_path: Path) -> None:
    path = tmp_path / "poison.json"
    path.write_bytes(b"not json")
    log = PoisonLog.load(path)
    assert log.suspects == {} and log.poison == {}
