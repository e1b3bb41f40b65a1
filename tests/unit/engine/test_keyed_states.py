"""Keyed stage states: what each key has applied survives a persist and a reload, so a
replay after a restart is recognised per key and per source partition."""

from __future__ import annotations

from typing import Any

from pipeline.engine.emit import Position
from pipeline.engine.state import KeyedStates


def states(backing: dict[str, Any]) -> KeyedStates[dict[str, int]]:
    return KeyedStates(backing, load=dict, dump=dict)


def test_offsets_are_kept_per_key_and_partition_through_a_reload() -> None:
    backing: dict[str, Any] = {}
    first = states(backing)
    assert first.already_applied("a", Position("raw:0", 5)) is False
    first.get("a", dict)["n"] = 1
    assert first.already_applied("b", Position("raw:1", 7)) is False
    first.get("b", dict)["n"] = 2
    assert first.already_applied("a", Position("raw:0", 5)) is True  # a replay of a
    assert first.already_applied("b", Position("raw:0", 5)) is False  # b never saw raw:0
    first.replace("b", {"n": 3})
    assert first.persist() == 2
    assert backing["a"] == {"state": {"n": 1}, "offsets": {"raw:0": 5}}
    assert backing["b"] == {"state": {"n": 3}, "offsets": {"raw:1": 7, "raw:0": 5}}

    second = states(backing)  # a restart: the offsets come back with the states
    assert second.already_applied("a", Position("raw:0", 4)) is True
    assert second.already_applied("a", Position("raw:0", 6)) is False
    assert second.already_applied("b", Position("raw:1", 7)) is True
    assert second.already_applied("b", Position("raw:0", 5)) is True
    assert second.already_applied("c", None) is False  # a dry run's records: never replays
    assert second.persist() == 0  # already_applied alone changes no state
    second.get("a", dict)
    second.persist()
    assert backing["a"]["offsets"] == {"raw:0": 6}


def test_forget_drops_offsets_not_yet_persisted() -> None:
    backing: dict[str, Any] = {}
    keyed = states(backing)
    assert keyed.already_applied("a", Position("raw:0", 1)) is False
    keyed.forget()  # a rebalance: the backing (nothing for "a") is the truth again
    assert keyed.already_applied("a", Position("raw:0", 1)) is False
