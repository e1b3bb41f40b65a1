"""The local three-node Kafka cluster (`kafka.sh cluster ...`) for tests: start it, crash or
stop a node, find a partition's leader, and stop everything at the end."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from tests.support.kafka_broker import KAFKA_SH, free_ports

NODES = (1, 2, 3)


@dataclass
class KafkaCluster:
    """Three KRaft nodes this session started; node N serves clients on `port(N)`."""

    base_port: int
    env: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port(n)}" for n in NODES)

    def port(self, node: int) -> int:
        return self.base_port + 2 * (node - 1)

    def node_of(self, port: int) -> int:
        return (port - self.base_port) // 2 + 1

    def _run(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            [str(KAFKA_SH), "cluster", *args], env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            msg = f"kafka.sh cluster {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            raise RuntimeError(msg)
        return result.stdout

    def up(self) -> None:
        self._run("up")

    def down(self) -> None:
        self._run("down")

    def kill(self, node: int) -> None:
        """SIGKILL one node: a crash, no controlled shutdown."""
        self._run("kill", str(node))

    def stop(self, node: int) -> None:
        """A controlled shutdown of one node (what a rolling restart does)."""
        self._run("stop", str(node))

    def start(self, node: int) -> None:
        """Start one node and wait until it serves clients."""
        self._run("start", str(node))

    def running(self) -> list[int]:
        out = subprocess.run(
            [str(KAFKA_SH), "cluster", "status"], env=self.env, capture_output=True, text=True,
            timeout=30, check=False,
        ).stdout  # fmt: skip
        return [n for n in NODES if f"node {n} running" in out]

    async def describe(self, topics: list[str]) -> dict[str, list[dict[str, object]]]:
        """Per topic, its partitions as the cluster reports them (leader, replicas, isr)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            found = await admin.describe_topics(topics)
        finally:
            await admin.close()
        return {t["topic"]: sorted(t["partitions"], key=lambda p: p["partition"]) for t in found}

    async def leader(self, topic: str, partition: int = 0) -> int:
        """The node that leads one partition."""
        partitions = (await self.describe([topic]))[topic]
        return int(next(p["leader"] for p in partitions if p["partition"] == partition))


def start_cluster(state_dir: Path) -> KafkaCluster:
    """Start the three nodes on KAFKA_CLUSTER_PORT (6 ports from there) or free ports."""
    given = os.environ.get("KAFKA_CLUSTER_PORT")
    base = int(given) if given else free_ports(6)
    env = {
        **os.environ,
        "KAFKA_CLUSTER_PORT": str(base),
        "KAFKA_CLUSTER_STATE_DIR": str(state_dir),
    }
    cluster = KafkaCluster(base, env)
    cluster.up()
    return cluster
