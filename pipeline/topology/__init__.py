"""A deployment's topology: YAML -> a validated, frozen :class:`Topology`.

Why: one file describes one city (areas, sensors, metrics, rules, report categories,
SLAs, topics, sinks). Every other module trusts it, so a bad topology is refused at load
with *every* error listed by path (``rules[3].levels[1].threshold: must be greater than
115 (the yellow level)``), never a stack trace. Nothing in a topology is evaluated as code;
credentials never live in it (only the names of environment variables that hold them).

Validation runs in two passes: each top-level section is validated on its own (so one bad
section does not hide the errors of another), then cross-references between the valid
sections are checked (parents, sensors' areas and metrics, rule metrics, SLA coverage).

One module per YAML section, each with its models and its ``check_*`` functions for the
second pass: ``topics``, ``areas``, ``boundaries``, ``sensors`` (and ``datastreams``),
``catalogue`` (``metrics``), ``rules``, ``reports`` (``report_categories``), ``sla`` (and
``escalation``), ``detection``, ``aggregation``, ``sinks``. Below them: ``errors`` (paths
and messages), ``base`` (the frozen base model, field types), ``durations``. Above them:
``checks`` (the second pass), ``model`` (:class:`Topology`), ``loading`` (YAML, the two
passes). Import from this package; a lower module never imports a higher one.
"""

from __future__ import annotations

from pipeline.topology.aggregation import Aggregation
from pipeline.topology.areas import Area
from pipeline.topology.base import LEVEL_ORDER, SEVERITY_ORDER
from pipeline.topology.catalogue import Metric
from pipeline.topology.checks import cross_check, placement_warnings
from pipeline.topology.detection import Detection
from pipeline.topology.errors import ErrorList, TopologyError
from pipeline.topology.event_time import EventTime
from pipeline.topology.loading import load_topology, load_yaml, parse_topology
from pipeline.topology.model import Topology
from pipeline.topology.reports import ClusterRule, ReportCategory
from pipeline.topology.rules import AreaScope, Band, Hold, Level, Rule
from pipeline.topology.sensors import Datastream, Sensor
from pipeline.topology.sinks import ChdbSink, ClickHouseSink, Sinks
from pipeline.topology.sla import Escalation, Sla
from pipeline.topology.topics import TOPIC_KINDS, Retention, TopicKind, Topics, TopicSpec

__all__ = [
    "LEVEL_ORDER",
    "SEVERITY_ORDER",
    "TOPIC_KINDS",
    "Aggregation",
    "Area",
    "AreaScope",
    "Band",
    "ChdbSink",
    "ClickHouseSink",
    "ClusterRule",
    "Datastream",
    "Detection",
    "EventTime",
    "ErrorList",
    "Escalation",
    "Hold",
    "Level",
    "Metric",
    "ReportCategory",
    "Retention",
    "Rule",
    "Sensor",
    "Sinks",
    "Sla",
    "TopicKind",
    "TopicSpec",
    "Topics",
    "Topology",
    "TopologyError",
    "cross_check",
    "load_topology",
    "load_yaml",
    "parse_topology",
    "placement_warnings",
]
