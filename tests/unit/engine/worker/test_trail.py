"""Trail and all_of: a pass is delivered while the next pass runs; outputs in order,
states in order, each state after its own outputs; a batch's block ends only once the
last state is done."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial

import pytest

from pipeline.engine.worker.outputs import Trail, all_of


class Broker:
    """Sends that take `delay` seconds (by kind) and log when each starts and ends."""

    def __init__(
        self, outputs_delay: float = 0.01, state_delay: float = 0.03, fail_on: str = ""
    ) -> None:
        self.delays = {"out": outputs_delay, "state": state_delay}
        self.fail_on = fail_on
        self.log: list[tuple[str, str]] = []
        self.in_flight: dict[str, int] = {"out": 0, "state": 0}
        self.most_in_flight: dict[str, int] = {"out": 0, "state": 0}

    async def send(self, kind: str, name: str) -> None:
        self.in_flight[kind] += 1
        self.most_in_flight[kind] = max(self.most_in_flight[kind], self.in_flight[kind])
        self.log.append(("start", name))
        try:
            await asyncio.sleep(self.delays[kind])
            if name == self.fail_on:
                msg = f"refused {name}"
                raise RuntimeError(msg)
        finally:
            self.in_flight[kind] -= 1
        self.log.append(("end", name))

    def steps(self, n: int) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        return partial(self.send, "out", f"out{n}"), partial(self.send, "state", f"state{n}")

    def at(self, edge: str, name: str) -> int:
        return self.log.index((edge, name))


async def _passes(broker: Broker, count: int, ran: list[str] | None = None) -> None:
    async with Trail() as trail:
        for n in range(count):
            if ran is not None:
                ran.append(f"pass{n}")
            await trail.then(*broker.steps(n))


def test_deliveries_trail_the_passes_in_order() -> None:
    broker = Broker()
    ran: list[str] = []
    asyncio.run(_passes(broker, 4, ran))
    assert ran == ["pass0", "pass1", "pass2", "pass3"]
    assert broker.most_in_flight == {"out": 1, "state": 1}  # one of each kind at a time
    for n in range(4):
        assert broker.at("end", f"out{n}") < broker.at("start", f"state{n}")  # outputs first
        if n:
            assert broker.at("end", f"out{n - 1}") < broker.at("start", f"out{n}")
            assert broker.at("end", f"state{n - 1}") < broker.at("start", f"state{n}")
    # the next pass's outputs travel while the previous state does
    assert broker.at("start", "out1") < broker.at("end", "state0")


def test_the_caller_runs_the_next_pass_before_the_previous_is_delivered() -> None:
    broker = Broker(outputs_delay=0.05)
    seen: list[list[tuple[str, str]]] = []

    async def batch() -> None:
        async with Trail() as trail:
            await trail.then(*broker.steps(0))
            await asyncio.sleep(0)
            seen.append(list(broker.log))  # the next pass would run now

    asyncio.run(batch())
    assert seen == [[("start", "out0")]]


def test_leaving_the_block_waits_for_the_last_state() -> None:
    broker = Broker()
    asyncio.run(_passes(broker, 2))
    assert broker.log[-1] == ("end", "state1")


def test_refused_outputs_fail_the_next_pass_and_their_state_is_never_sent() -> None:
    broker = Broker(fail_on="out0")
    with pytest.raises(RuntimeError, match="refused out0"):
        asyncio.run(_passes(broker, 3))
    assert ("start", "state0") not in broker.log
    assert ("start", "out1") not in broker.log


def test_a_refused_state_fails_the_block_and_no_later_state_is_sent() -> None:
    broker = Broker(fail_on="state0")
    with pytest.raises(RuntimeError, match="refused state0"):
        asyncio.run(_passes(broker, 3))
    assert not any(name in ("state1", "state2") for _, name in broker.log)


def test_a_block_left_by_an_error_does_not_wait_and_its_steps_are_observed() -> None:
    broker = Broker(outputs_delay=0.05, fail_on="out0")
    unhandled: list[dict[str, object]] = []

    async def batch() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unhandled.append(ctx))
        try:
            async with Trail() as trail:
                await trail.then(*broker.steps(0))
                msg = "the next pass failed"
                raise ValueError(msg)
        except ValueError:
            assert ("end", "out0") not in broker.log  # left without waiting for it
        await asyncio.sleep(0.15)  # the outputs fail meanwhile, with no one awaiting them

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


def test_refused_last_outputs_fail_the_block_and_leave_nothing_unobserved() -> None:
    broker = Broker(fail_on="out1")
    unhandled: list[dict[str, object]] = []

    async def batch() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unhandled.append(ctx))
        with pytest.raises(RuntimeError, match="refused out1"):
            await _passes(broker, 2)
        await asyncio.sleep(0.1)

    asyncio.run(batch())
    assert ("start", "state1") not in broker.log
    assert unhandled == []
