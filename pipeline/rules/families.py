"""Rule families: one protocol every kind of reading rule implements, and their registry.

Why: a rule family (graded thresholds today; a rate of change or a silent sensor
tomorrow) is a topology section model, one module here, its tests and its docs. The
detect stage does not know the kinds: for each rule it asks :func:`family_for` for a
runner (``subject`` / ``new_state`` / ``step`` / ``advance``), and it persists every
family's states in one table through :func:`state_to_dict` / :func:`state_from_dict`.

Adding a family:

1. its section model in the topology (a frozen pydantic model, one more member of the
   ``rules`` union);
2. one module in ``pipeline/rules/`` with a class that satisfies :class:`RuleFamily`
   and a runner that satisfies :class:`RuleRunner` (a pure ``step`` over a plain state
   with ``rule_id`` and ``subject``, as
   :mod:`pipeline.rules.detection` does), opening incidents through
   :func:`pipeline.rules.lifecycle.new_incident` with ids from
   :func:`~pipeline.rules.lifecycle.incident_id`;
3. its entry in :data:`FAMILIES` below;
4. its tests in ``tests/unit/rules/`` and its section in the topology docs.

Every state of a (rule, subject) lives under :func:`state_key` whatever its family.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from pipeline.aggregates.watermark import Progress
from pipeline.models import ReadingRow
from pipeline.rules.detection.family import THRESHOLD
from pipeline.rules.detection.state import state_key
from pipeline.rules.lifecycle import IncidentEvent
from pipeline.topology import Topology

__all__ = [
    "DEFAULT_KIND",
    "FAMILIES",
    "FAMILY_FIELD",
    "REGISTRY",
    "FamilyState",
    "Registry",
    "RuleFamily",
    "RuleRunner",
    "family_for",
    "state_from_dict",
    "state_key",
    "state_to_dict",
]


class FamilyState(Protocol):
    """What every family's per-(rule, subject) state exposes to the engine."""

    @property
    def rule_id(self) -> str:
        """The id of the rule this state evaluates."""
        ...

    @property
    def subject(self) -> str:
        """The sensor or area it evaluates the rule for."""
        ...


RuleT_contra = TypeVar("RuleT_contra", contravariant=True)
StateT = TypeVar("StateT", bound=FamilyState)


class RuleRunner(Protocol[StateT]):
    """One rule of one topology, ready to evaluate readings: everything the family needs
    of the rule and the topology is worked out once, when the runner is made."""

    @property
    def rule_id(self) -> str:
        """The id of the rule."""
        ...

    @property
    def metric(self) -> str:
        """The catalogue metric whose readings the rule evaluates."""
        ...

    def subject(self, reading: ReadingRow) -> str | None:
        """The subject the rule evaluates ``reading`` under; None: not this rule's."""
        ...

    def new_state(self, subject: str) -> StateT:
        """The empty state of the rule for one subject."""
        ...

    def step(
        self, state: StateT, reading: ReadingRow, partition: str | None, progress: Progress
    ) -> tuple[StateT, list[IncidentEvent]]:
        """Feed one reading of the state's subject; the state and the incident events.
        `partition` is the reading's raw partition and `progress` its key's intake
        progress (see :class:`~pipeline.aggregates.watermark.SourceClock`)."""
        ...

    def advance(self, state: StateT, watermark: datetime) -> tuple[StateT, list[IncidentEvent]]:
        """Evaluate everything at or before ``watermark`` (nothing older comes later)."""
        ...

    def horizon(self) -> timedelta:
        """How far past the newest reading ``advance`` must go at end of input so that
        everything fed is evaluated (an area window's width; 0 when none)."""
        ...


class RuleFamily(Protocol[RuleT_contra, StateT]):
    """One kind of reading rule: which rules it claims, a runner per rule, a state codec.

    ``kind`` names the topology rule kind it evaluates; ``state_type`` is the class of its
    states (for the codec). Runners are pure functions of their arguments and the state.
    """

    @property
    def kind(self) -> str:
        """The topology rule kind (``threshold``), written into persisted states."""
        ...

    @property
    def state_type(self) -> type[StateT]:
        """The class of this family's states."""
        ...

    def matches(self, rule: object) -> bool:
        """Whether ``rule`` (one entry of ``topology.rules``) is of this family."""
        ...

    def runner(self, rule: RuleT_contra, topology: Topology) -> RuleRunner[StateT]:
        """The rule made ready for `topology` (built once per worker and rule)."""
        ...

    def state_to_dict(self, state: StateT) -> dict[str, Any]:
        """The state as JSON types."""
        ...

    def state_from_dict(self, data: Mapping[str, Any]) -> StateT:
        """Inverse of :meth:`state_to_dict`."""
        ...


class Registry:
    """Rule families by kind, and the lookups the detect stage needs from them.

    Why a class: the pipeline has one (:data:`REGISTRY`), a test builds its own with a
    family of its own making.
    """

    def __init__(self, families: Iterable[RuleFamily[Any, Any]]) -> None:
        self.by_kind: dict[str, RuleFamily[Any, Any]] = {}
        for family in families:
            if family.kind in self.by_kind:
                msg = f"two rule families of kind {family.kind!r}"
                raise ValueError(msg)
            self.by_kind[family.kind] = family
        self._by_state_type = {family.state_type: family for family in self.by_kind.values()}
        self._by_rule_type: dict[type, RuleFamily[Any, Any]] = {}

    def family_for(self, rule: object) -> RuleFamily[Any, Any]:
        """The family of a topology rule (looked up once per rule class: each rule kind
        is its own section model).

        Raises ``LookupError`` for a rule no family (or more than one) claims: the topology
        admitted a rule kind nothing here evaluates, a programming error, not bad input.
        """
        family = self._by_rule_type.get(type(rule))
        if family is None:
            claimed = [f for f in self.by_kind.values() if f.matches(rule)]
            if len(claimed) != 1:
                kinds = [f.kind for f in claimed]
                msg = f"{type(rule).__name__} is claimed by {kinds or 'no family'}, not one"
                raise LookupError(msg)
            family = self._by_rule_type[type(rule)] = claimed[0]
        return family

    def state_to_dict(self, state: FamilyState) -> dict[str, Any]:
        """Any family's state as JSON types, tagged with its family's kind."""
        family = self._by_state_type[type(state)]
        data = family.state_to_dict(state)
        data[FAMILY_FIELD] = family.kind
        return data

    def state_from_dict(self, data: Mapping[str, Any]) -> FamilyState:
        """Inverse of :meth:`state_to_dict`; an untagged state is a :data:`DEFAULT_KIND`
        one (written before rule families existed)."""
        kind = str(data.get(FAMILY_FIELD, DEFAULT_KIND))
        family = self.by_kind.get(kind)
        if family is None:
            msg = f"persisted state of unknown rule family {kind!r}"
            raise ValueError(msg)
        state: FamilyState = family.state_from_dict(data)
        return state


#: The key naming a state's family in :meth:`Registry.state_to_dict`.
FAMILY_FIELD = "family"
#: The family of a persisted state that names none.
DEFAULT_KIND = THRESHOLD.kind

#: Every rule family of the pipeline. A new family is one more entry.
FAMILIES: tuple[RuleFamily[Any, Any], ...] = (THRESHOLD,)

#: The pipeline's registry, and its lookups as plain functions for the detect stage.
REGISTRY = Registry(FAMILIES)
family_for = REGISTRY.family_for
state_to_dict = REGISTRY.state_to_dict
state_from_dict = REGISTRY.state_from_dict
