"""Start and stop the real local Kafka broker (deploy/local/kafka/kafka.sh) for tests."""

from __future__ import annotations

import importlib.util
import os
import random
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tests.support.paths import ROOT

KAFKA_SH = ROOT / "deploy" / "local" / "kafka" / "kafka.sh"
PROBE_PATH = ROOT / "deploy" / "local" / "kafka" / "kafka_probe.py"


def load_probe() -> ModuleType:
    """Import the stdlib wire-protocol probe that kafka.sh uses."""
    spec = importlib.util.spec_from_file_location("kafka_probe", PROBE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kafka_probe"] = module
    spec.loader.exec_module(module)
    return module


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (where connect() picks its ports)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(length: int) -> int:
    """The first of `length` consecutive free ports, below the ephemeral range.

    Why below it: a node binds its ports seconds after they were found free, and meanwhile
    any connect() on the machine may take one of them as its ephemeral port (a node that
    retries a peer's port in that range can even connect to itself from it, TCP's
    simultaneous open). Seen once: a cluster node's controller port, free when chosen, was
    "Address already in use" when the node started, and the cluster never came up.
    """
    low = _ephemeral_low()
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10_000, low - length)
        try:
            for port in range(base, base + length):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    msg = f"no {length} consecutive free ports found below {low}"
    raise RuntimeError(msg)


def free_port_pair() -> int:
    """A port whose successor is also free (client port + controller port)."""
    return free_ports(2)


@dataclass
class Broker:
    """A broker this test session started (or was given); `stop()` ends what it started."""

    bootstrap: str
    env: dict[str, str] | None = None

    def stop(self) -> None:
        if self.env is not None:
            subprocess.run([str(KAFKA_SH), "stop"], env=self.env, check=False, timeout=90)


def start_broker(state_dir: Path) -> Broker:
    """Use KAFKA_BOOTSTRAP_SERVERS when set, else start a private broker on free ports."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        return Broker(bootstrap=given)
    port = free_port_pair()
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(port + 1),
        "KAFKA_STATE_DIR": str(state_dir),
    }
    result = subprocess.run(
        [str(KAFKA_SH), "start"], env=env, capture_output=True, text=True, timeout=180
    )
    if result.returncode != 0:
        msg = f"kafka.sh start failed:\n{result.stdout}\n{result.stderr}"
        raise RuntimeError(msg)
    return Broker(bootstrap=f"127.0.0.1:{port}", env=env)
