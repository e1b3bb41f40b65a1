"""A small client for downstream services: follow incident topics, act on incidents.

Why: a district's or a street's handling system should not have to rediscover the
contract (topic names, the schema version, signing, where replies come back). Two
pieces, each an async context manager over aiokafka:

- :class:`IncidentFeed` follows one or more area topics as typed
  :class:`~pipeline.models.Incident` records, refuses a schema version it does not
  know, and commits its offsets in its consumer group after the records it yielded were
  handled, so a restart resumes where it stopped;
- :class:`UnitClient` sends a unit's signed updates and waits for each one's reply.

docs/incidents.md explains the contract; docs/examples/ack_desk.py is a whole service.
"""

from pipeline.client.errors import ClientError, IncompatibleSchema, NoReply
from pipeline.client.feed import IncidentFeed, parse_incident
from pipeline.client.units import UnitClient, reply_partition
from pipeline.models import Incident, IncidentUpdate, UnitAction, UpdateReply

__all__ = [
    "ClientError",
    "Incident",
    "IncidentFeed",
    "IncidentUpdate",
    "IncompatibleSchema",
    "NoReply",
    "UnitAction",
    "UnitClient",
    "UpdateReply",
    "parse_incident",
    "reply_partition",
]
