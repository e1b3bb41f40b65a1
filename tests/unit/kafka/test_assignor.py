"""The partition assignor balances the workers' load, not only their partition counts
(`pipeline.kafka.assignor`)."""

from __future__ import annotations

import itertools

from faust.assignor.client_assignment import CopartitionedAssignment
from faust.assignor.copartitioned_assignor import CopartitionedAssignor

from pipeline.kafka.assignor import balance, weighted_assignor

#: The sample topology's sensors per readings partition.
SAMPLE = {0: 50.0, 1: 50.0, 2: 50.0, 3: 75.0, 4: 100.0, 5: 75.0}


def loads(actives: dict[str, set[int]]) -> list[float]:
    return sorted(sum(SAMPLE[p] for p in parts) for parts in actives.values())


def test_the_split_a_sticky_join_leaves_is_evened_out() -> None:
    actives = {"first": {0, 1, 2}, "joiner": {3, 4, 5}}  # 150 / 250
    assert balance(actives, SAMPLE) == 1
    assert loads(actives) == [200.0, 200.0]
    assert sorted(map(len, actives.values())) == [3, 3]


def test_a_balanced_split_or_equal_weights_move_nothing() -> None:
    actives = {"a": {0, 2, 4}, "b": {1, 3, 5}}
    assert balance(actives, SAMPLE) == 0
    assert actives == {"a": {0, 2, 4}, "b": {1, 3, 5}}
    sticky = {"a": {0, 1, 2}, "b": {3, 4, 5}}
    assert balance(sticky, dict.fromkeys(range(6), 1.0)) == 0
    assert sticky == {"a": {0, 1, 2}, "b": {3, 4, 5}}


def test_counts_stay_within_one_and_the_heaviest_load_never_rises() -> None:
    weights = {p: float(w) for p, w in enumerate([5, 90, 7, 60, 3, 40, 33, 8, 1, 70, 12, 25])}
    for split in itertools.islice(itertools.combinations(range(12), 4), 0, None, 7):
        rest = [p for p in range(12) if p not in split]
        actives = {"a": set(split), "b": set(rest[:4]), "c": set(rest[4:])}
        before = max(sum(weights[p] for p in parts) for parts in actives.values())
        balance(actives, weights)
        sizes = sorted(map(len, actives.values()))
        assert sizes[-1] - sizes[0] <= 1
        assert sorted(itertools.chain(*actives.values())) == list(range(12))
        assert max(sum(weights[p] for p in parts) for parts in actives.values()) <= before


def test_faust_assigns_through_the_balanced_copartitioned_assignor() -> None:
    """The app's assignor class swaps in the balancing assignor for Faust's own while it
    assigns, and only for the group holding the weighted topic."""
    assignor_class = weighted_assignor("cityops.readings", SAMPLE)
    seen: list[dict[str, set[int]]] = []

    def fake_perform(self: object, cluster: object, member_metadata: object) -> None:
        import faust.assignor.partition_assignor as module

        for topics in ({"cityops.readings", "cityops.incidents"}, {"other"}):
            sticky = {
                "first": CopartitionedAssignment(actives={0, 1, 2}, topics=topics),
                "joiner": CopartitionedAssignment(actives={3, 4, 5}, topics=topics),
            }
            got = module.CopartitionedAssignor(
                topics=topics, cluster_asgn=sticky, num_partitions=6, replicas=0
            ).get_assignment()
            seen.append({client: set(a.actives) for client, a in got.items()})

    base = assignor_class.__mro__[1]
    original = base._perform_assignment
    base._perform_assignment = fake_perform
    try:
        assignor_class._perform_assignment(object.__new__(assignor_class), None, {})
    finally:
        base._perform_assignment = original
    readings, other = seen
    assert loads(readings) == [200.0, 200.0]
    assert other == {"first": {0, 1, 2}, "joiner": {3, 4, 5}}  # another group: Faust's own
    import faust.assignor.partition_assignor as module

    assert module.CopartitionedAssignor is CopartitionedAssignor  # restored
