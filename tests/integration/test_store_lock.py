"""One embedded store, one process: a second worker or `cityops store init` on a store
directory another process holds is refused at once, in one line that names the settings,
instead of chDB retrying its own lock without end. And the store follows the data dir.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.sinks.backends.chdb import LOCK_FILE
from tests.support.demo import demo_data, deploy
from tests.support.paths import DEMO, ROOT
from tests.support.worker import WorkerProcess

#: Bounds a refusal must come within (a hang is the defect); not a timing assertion.
REFUSED_WITHIN = 60.0

HOLD = (
    "import sys; from pipeline.sinks.backends.chdb import ChdbStore; "
    "store = ChdbStore(sys.argv[1]); store.init(); print('held', flush=True); sys.stdin.read()"
)


def _store_init(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own CLI
        [sys.executable, "-m", "pipeline", "store", "init", "--topology", str(DEMO)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=REFUSED_WITHIN, check=False,
    )  # fmt: skip


def _assert_refusal(line: str, holder_pid: int) -> None:
    assert f"in use by another process (pid {holder_pid})" in line, line
    assert "CITYOPS_DATA_DIR" in line and "CITYOPS_CHDB_PATH" in line, line
    assert "sinks.store: clickhouse" in line, line


@pytest.mark.integration
def test_store_init_is_refused_while_another_process_holds_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = {**os.environ, "CITYOPS_CHDB_PATH": str(store)}
    holder = subprocess.Popen(  # noqa: S603  # our own interpreter
        [sys.executable, "-c", HOLD, str(store)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = _store_init(env)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        _assert_refusal(lines[0], holder.pid)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder exits; the kernel drops its lock
        holder.wait(timeout=60)
    done = _store_init(env)
    assert done.returncode == 0, done.stderr  # nothing stale is left behind
    assert "store ready" in done.stdout


@pytest.mark.integration
def test_store_init_follows_the_data_dir(tmp_path: Path) -> None:
    env = {**os.environ, "CITYOPS_DATA_DIR": str(tmp_path / "state")}
    env.pop("CITYOPS_CHDB_PATH", None)
    done = _store_init(env)
    assert done.returncode == 0, done.stderr
    # demo.yaml's sinks.chdb.path is "chdb-demo", under the data dir
    assert (tmp_path / "state" / "chdb-demo" / LOCK_FILE).exists()
    assert (tmp_path / "state" / "chdb-demo" / "metadata").is_dir()  # chDB's own files


@pytest.mark.integration
async def test_a_second_worker_on_one_store_is_refused_at_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    path, _ = await deploy(
        demo_data(), bootstrap=kafka_bootstrap, tmp_path=tmp_path, prefix=topic_prefix
    )
    group = f"lock-{topic_prefix}"
    first = WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=group, instance="a"
    )
    del first.env["CITYOPS_CHDB_PATH"]  # the store follows the worker's --data-dir
    store = tmp_path / f"{group}a" / "chdb-demo"
    second = WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=group, instance="b",
        env={"CITYOPS_CHDB_PATH": str(store)},
    )  # fmt: skip
    with first:
        deadline = time.monotonic() + REFUSED_WITHIN
        lock = store / LOCK_FILE
        while not (lock.exists() and lock.read_text().strip() == str(first.process.pid)):  # type: ignore[union-attr]  # started
            assert first.alive(), first.report()
            assert time.monotonic() < deadline, f"no lock in {store}:\n{first.report()}"
            time.sleep(0.2)
        second.start()
        assert second.process is not None
        code = second.process.wait(timeout=REFUSED_WITHIN)
        assert code == 1, second.report()
        last = second.log().strip().splitlines()[-1]
        assert last.startswith("cannot open the aggregate store: "), last
        _assert_refusal(last, first.process.pid)  # type: ignore[union-attr]  # started
        assert first.alive(), first.report()
