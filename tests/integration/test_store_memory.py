"""The embedded store gives back the engine library's start-up pages once it is ready,
and works on as before (in a process of its own: one chDB engine per process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import json, sys
from datetime import timedelta
from pipeline.sinks.backends import chdb as backend
from pipeline.sinks.base import dedup_token_for
from pipeline.models import store_row
from tests.unit.sinks.rows import MINUTE, T0, aggregate_row

def library_rss_kb():
    # kB of the library resident in this process alone: pages another process maps too
    # (a pytest parent that ran the engine) are not reclaimed, so they are not counted.
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        head = line.split()
        if "-" in head[0] and len(head) >= 5:
            inside = len(head) == 6 and "/chdb/_chdb" in head[5]
        elif inside and head[0] in ("Private_Clean:", "Private_Dirty:"):
            total += int(head[1])
    return total

store = backend.ChdbStore(sys.argv[1], database="memory")
backend.get_session(store.path).query("SELECT 1", "CSV")  # the engine is up
started = library_rss_kb()
store.init()
released = library_rss_kb()
rows = [aggregate_row(area_code=f"d{n}", window_start=T0 + n * MINUTE,
                      window_end=T0 + (n + 1) * MINUTE) for n in range(50)]
stored = [store_row(row) for row in rows]
store.write(stored, dedup_token=dedup_token_for(stored))
read = store.query("d7", "pm25", T0, T0 + timedelta(hours=1), rows[0].level)
print(json.dumps({"advised": backend._released, "started": started, "released": released,
                  "working": library_rss_kb(), "read": [r.model_dump(mode="json") for r in read],
                  "want": rows[7].model_dump(mode="json")}))
"""


def test_the_engine_library_start_up_pages_are_released_and_the_store_still_works(
    tmp_path: Path,
) -> None:
    """Most of what starting the engine made resident of its library is given back by
    `init`; writing and reading rows afterwards fault back only what they use."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "chdb")],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["read"] == [seen["want"]]  # the store works after the release
    if seen["advised"] == [0]:
        pytest.skip("the kernel refuses MADV_PAGEOUT (Linux before 5.4)")
    assert seen["started"] > 20_000, seen  # kB: starting the engine reads its library
    assert seen["released"] < seen["started"] / 4, seen
