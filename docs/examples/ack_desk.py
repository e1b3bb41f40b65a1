"""An acknowledging desk: a district's handling service, in a page, on pipeline.client.

It follows one district's incident topic, acknowledges every incident it sees still
waiting for a unit (open or dispatched) as its unit, and prints each reply. It resumes
from its consumer group's committed offsets after a restart; an incident it already
acknowledged comes back only as newer versions (and acknowledging it again would be
refused as an invalid transition, which it reports and moves on).

    python docs/examples/ack_desk.py --prefix cityops.shanghai. --district 310104 \
        --unit 310104/urban-management --key unit.pem

Environment: CITYOPS_KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path

from pipeline.client import IncidentFeed, UnitClient, UpdateReply
from pipeline.models import IncidentState
from pipeline.rules.units import load_private_key
from pipeline.settings import Settings

WAITING = (IncidentState.open, IncidentState.dispatched)


async def run(
    settings: Settings,
    *,
    prefix: str,
    district: str,
    unit: str,
    key_file: Path,
    group_id: str,
    on_reply: Callable[[UpdateReply], None] = print,
    stop_after: int | None = None,
) -> list[UpdateReply]:
    """Acknowledge the district's waiting incidents; stop after `stop_after` replies
    (None: never). Returns the replies."""
    key = load_private_key(key_file.read_bytes())
    replies: list[UpdateReply] = []
    newest: dict[str, int] = {}  # incident id -> highest version seen
    async with (
        IncidentFeed(settings, prefix=prefix, group_id=group_id, districts=[district]) as feed,
        UnitClient(settings, prefix=prefix, unit=unit, private_key=key) as client,
    ):
        async for delivery in feed:
            incident = delivery.incident
            if incident.version <= newest.get(incident.incident_id, 0):
                continue  # an older snapshot (the topic is compacted, not deduplicated)
            newest[incident.incident_id] = incident.version
            if incident.state not in WAITING:
                continue
            reply = await client.send(incident.incident_id, "acknowledge", note="desk on it")
            on_reply(reply)
            replies.append(reply)
            if stop_after is not None and len(replies) >= stop_after:
                break
    return replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prefix", required=True, help="the topology's topics.prefix")
    parser.add_argument("--district", required=True, help="district code to follow")
    parser.add_argument("--unit", required=True, help="this unit's id in the keys file")
    parser.add_argument("--key", required=True, type=Path, help="this unit's private key (PEM)")
    parser.add_argument("--group", default=None, help="consumer group (default: the unit id)")
    args = parser.parse_args()
    asyncio.run(
        run(
            Settings(),
            prefix=args.prefix,
            district=args.district,
            unit=args.unit,
            key_file=args.key,
            group_id=args.group or f"desk-{args.unit.replace('/', '-')}",
        )
    )


if __name__ == "__main__":
    main()
