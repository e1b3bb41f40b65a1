"""Trail and all_of: a pass is delivered while the next pass runs, deliveries in order,
and a batch's block ends only once the last of them is done."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from pipeline.engine.worker.outputs import Trail, all_of


class Broker:
    """A send that takes `delay` seconds and logs when each one starts and ends."""

    def __init__(self, delay: float = 0.02, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.log: list[tuple[str, str]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, records: list[str]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.log.append(("start", records[0]))
        try:
            await asyncio.sleep(self.delay)
            if records[0] == self.fail_on:
                msg = f"refused {records[0]}"
                raise RuntimeError(msg)
        finally:
            self.in_flight -= 1
        self.log.append(("end", records[0]))


def test_the_caller_goes_on_while_one_send_travels_and_sends_never_overlap() -> None:
    broker = Broker()
    ran: list[str] = []

    async def batch() -> None:
        async with Trail() as trail:
            for name in ("state0", "state1", "state2"):
                ran.append(f"pass of {name}")
                await trail.then(partial(broker.send, [name]))
                await asyncio.sleep(0)  # the send starts on the loop's next turn
                assert broker.log[-1] == ("start", name)  # returned before its end
            ran.append("last pass done")
        ran.append("acknowledged")

    asyncio.run(batch())
    assert broker.most_in_flight == 1
    assert broker.log == [
        (edge, f"state{n}") for n in range(3) for edge in ("start", "end")
    ]  # each send ended before the next started: one partition's records stay in order
    assert ran[-1] == "acknowledged"


def test_leaving_the_block_waits_for_the_last_send() -> None:
    broker = Broker(delay=0.05)

    async def batch() -> list[tuple[str, str]]:
        async with Trail() as trail:
            await trail.then(lambda: broker.send(["state0"]))
        return list(broker.log)

    assert asyncio.run(batch()) == [("start", "state0"), ("end", "state0")]


def test_a_refused_send_fails_the_next_send_and_nothing_after_it_starts() -> None:
    broker = Broker(fail_on="state0")

    async def batch() -> None:
        async with Trail() as trail:
            await trail.then(lambda: broker.send(["state0"]))
            await trail.then(lambda: broker.send(["state1"]))

    with pytest.raises(RuntimeError, match="refused state0"):
        asyncio.run(batch())
    assert ("start", "state1") not in broker.log


def test_a_refused_last_send_fails_the_block() -> None:
    broker = Broker(fail_on="state1")

    async def batch() -> None:
        async with Trail() as trail:
            await trail.then(lambda: broker.send(["state0"]))
            await trail.then(lambda: broker.send(["state1"]))

    with pytest.raises(RuntimeError, match="refused state1"):
        asyncio.run(batch())


def test_a_block_left_by_an_error_does_not_wait_and_its_send_is_observed() -> None:
    broker = Broker(delay=0.05, fail_on="state0")
    unhandled: list[dict[str, object]] = []

    async def batch() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unhandled.append(ctx))
        try:
            async with Trail() as trail:
                await trail.then(lambda: broker.send(["state0"]))
                msg = "the next pass failed"
                raise ValueError(msg)
        except ValueError:
            assert ("end", "state0") not in broker.log  # left without waiting for it
        await asyncio.sleep(0.1)  # the send fails meanwhile, with no one awaiting it

    asyncio.run(batch())
    assert unhandled == []


def test_all_of_waits_for_every_step_and_raises_the_first_failure() -> None:
    done: list[str] = []

    async def step(name: str, delay: float, fail: bool = False) -> None:
        await asyncio.sleep(delay)
        if fail:
            raise RuntimeError(name)
        done.append(name)

    async def run() -> None:
        await all_of(step("fails fast", 0.0, fail=True), step("slow", 0.05))

    with pytest.raises(RuntimeError, match="fails fast"):
        asyncio.run(run())
    assert done == ["slow"]  # not left running when the failure was raised


def test_all_of_runs_the_steps_together() -> None:
    order: list[str] = []

    async def step(name: str) -> None:
        order.append(f"{name} start")
        await asyncio.sleep(0.01)
        order.append(f"{name} end")

    asyncio.run(all_of(step("a"), step("b")))
    assert order[:2] == ["a start", "b start"]
