"""Sample a loaded worker with py-spy and summarise where its time goes.

Why py-spy: it samples from outside (no code change, no slowdown of the worker under
test) and sees every thread. Only the thread holding the GIL is sampled (`--gil`): a
thread waiting for it (the store writer's, while the event loop runs) does no work, and
counting its waits had the store's row encoding at several times its real share. The raw
output is collapsed stacks; the summary counts samples per function, inclusive (anywhere
on the stack) and exclusive (at the top).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def record_in_background(pid: int, seconds: float, out: Path, delay: float) -> threading.Thread:
    """Start py-spy on ``pid`` after ``delay`` s (past start-up) for ``seconds`` s."""
    exe = py_spy()
    if exe is None:
        msg = "py-spy is not installed (pip install py-spy into the venv)"
        raise RuntimeError(msg)

    def target() -> None:
        threading.Event().wait(delay)
        subprocess.run(
            [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
             "--format", "raw", "--nonblocking", "--gil", "--output", str(out)],
            check=False, capture_output=True, timeout=seconds + 60,
        )  # fmt: skip

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _frame(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def summarise(raw: Path, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    """Shares of samples per function: inclusive and exclusive, the ``top`` of each."""
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        exclusive[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if total == 0:
        return {"inclusive": [], "exclusive": []}
    return {
        "inclusive": [(n, round(c / total, 4)) for n, c in inclusive.most_common(top)],
        "exclusive": [(n, round(c / total, 4)) for n, c in exclusive.most_common(top)],
        "samples": [("total", float(total))],
    }
