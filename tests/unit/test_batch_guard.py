"""A failed agent batch ends the process before Faust could acknowledge it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from pipeline.app import EXIT_BATCH_FAILED

_SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, sys
    from pipeline.app import unacknowledged_on_failure

    logging.basicConfig(stream=sys.stderr, level=logging.INFO)

    async def batch(fail: bool) -> None:
        async with unacknowledged_on_failure("analyze"):
            if fail:
                raise RuntimeError("store client bug")
        print("acknowledged", flush=True)

    async def main() -> None:
        await batch(False)
        await batch(True)
        print("acknowledged after failure", flush=True)

    asyncio.run(main())
    """
)


def test_a_failed_batch_exits_without_acknowledging() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == EXIT_BATCH_FAILED, done.stderr
    assert done.stdout.splitlines() == ["acknowledged"]
    assert "the analyze agent's batch failed" in done.stderr
    assert "RuntimeError: store client bug" in done.stderr
