"""Start and stop the real local Kafka broker (deploy/local/kafka/kafka.sh) for tests."""

from __future__ import annotations

import importlib.util
import os
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


def free_port_pair() -> int:
    """A port whose successor is also free (client port + controller port)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
        if port >= 65535:
            continue
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    msg = "no free port pair found"
    raise RuntimeError(msg)


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
