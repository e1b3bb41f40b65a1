"""The pipeline's stages: pure decisions wired to topics, shared by the worker and the dry run.

Why here: the Faust worker (`pipeline/engine/worker/`) and `cityops dry-run` both call these
classes, so the worker and the dry run cannot disagree. A stage takes one input, updates its
keyed state and returns `Emit`s; it never talks to Kafka and never raises for bad input (a
bad record becomes a dead letter).

State lives in a `KeyedStates` cache over any `MutableMapping[str, dict]`: a plain dict in
the dry run, a changelog-backed Faust table in the worker. Keys are the input topic's
message keys, so a state lives in the partition of the records that change it:

- readings are keyed by district code: per-rule detection states (one table entry each,
  see `state_table_key`), per-area windows and district/street aggregates of one district
  stay together in one partition, so several workers in one group produce exactly what
  one worker produces;
- reports are keyed by category (cluster state is per category);
- incident events and incident updates are keyed by incident id (lifecycle state).
"""

from pipeline.engine.stages.aggregate import AggregateStage, rows_to_jsonl
from pipeline.engine.stages.dead_letters import dead_letter
from pipeline.engine.stages.detect import DetectStage, incident_event_emits
from pipeline.engine.stages.lifecycle import IncidentRecord, LifecycleStage
from pipeline.engine.stages.normalize import NormalizeStage
from pipeline.engine.state import (
    STATE_KEY_SEPARATOR,
    KeyedStates,
    record_key_of,
    state_table_key,
)

__all__ = [
    "STATE_KEY_SEPARATOR",
    "AggregateStage",
    "DetectStage",
    "IncidentRecord",
    "KeyedStates",
    "LifecycleStage",
    "NormalizeStage",
    "dead_letter",
    "incident_event_emits",
    "record_key_of",
    "rows_to_jsonl",
    "state_table_key",
]
