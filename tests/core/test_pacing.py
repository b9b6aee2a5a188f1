"""Pacing arithmetic on an injected clock: no test here sleeps."""

import asyncio
import heapq
import itertools
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from core.pacing import Pacer, Rates, is_group_address

T = TypeVar("T")


class FakeClock:
    """A clock that jumps to the next sleeper's wake-up once every task is asleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._order), woken))
        await woken

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(self._drive(work))

    async def _drive(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(work)
        while not task.done():
            for _ in range(3):
                await asyncio.sleep(0)
            if self._sleepers and not task.done():
                at, _, woken = heapq.heappop(self._sleepers)
                self.now = max(self.now, at)
                woken.set_result(None)
        return await task


def pacer(clock: FakeClock, **rates: float) -> Pacer:
    return Pacer(Rates(**rates), clock=clock, sleep=clock.sleep)


def most_in_any_window(times: list[float], window: float) -> int:
    # A nanosecond of slack: slots added up in floating point may fall a hair short.
    window -= 1e-9
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - window:
            start += 1
        most = max(most, end - start + 1)
    return most


async def send_all(pacing: Pacer, clock: FakeClock, addresses: list[str]) -> list[float]:
    """Serve each chat's sends in order, all chats concurrently, as the outbox does."""
    stamps: dict[str, list[float]] = {}

    async def chat(address: str, count: int) -> None:
        for _ in range(count):
            await pacing.wait_turn(address)
            stamps.setdefault(address, []).append(clock())

    await asyncio.gather(*(chat(a, n) for a, n in Counter(addresses).items()))
    return [at for each in stamps.values() for at in each]


def test_negative_chat_ids_and_channel_names_are_groups() -> None:
    assert is_group_address("-1004123456789") and is_group_address("-42")
    assert is_group_address("@radio_dhading")
    assert not is_group_address("700100200")


def test_overall_slots_are_spaced_to_thirty_a_second() -> None:
    clock = FakeClock()
    pacing = pacer(clock)

    slots = [pacing.book(str(700000 + n)) for n in range(90)]

    assert slots[0] == clock.now
    assert slots[-1] == pytest.approx(clock.now + 89 / 30)
    assert most_in_any_window(slots, 1.0) == 30


def test_one_private_chat_gets_about_one_message_a_second() -> None:
    clock = FakeClock()
    pacing = pacer(clock)

    first = pacing.book("700100200")

    assert pacing.ready_at("700100200") == pytest.approx(first + 1.0)


def test_a_group_gets_at_most_twenty_a_minute() -> None:
    clock = FakeClock()
    pacing = pacer(clock)

    stamps = clock.run(send_all(pacing, clock, ["-1004123456789"] * 41))

    assert most_in_any_window(stamps, 60.0) == 20
    assert max(stamps) - min(stamps) == pytest.approx(40 * 3.0)


def test_a_waiting_chat_does_not_hold_up_the_others() -> None:
    clock = FakeClock()
    pacing = pacer(clock)
    pacing.pause("-42", 30.0)

    stamps = clock.run(send_all(pacing, clock, ["-42"] + [str(n) for n in range(1, 61)]))

    others = sorted(stamps)[:-1]
    assert 59 / 30 <= others[-1] - others[0] <= 59 / 30 * 1.011
    assert max(stamps) >= 1000.0 + 30.0


def test_a_429_pauses_the_chat_for_at_least_retry_after() -> None:
    clock = FakeClock()
    pacing = pacer(clock)
    pacing.book("700100200")

    pacing.pause("700100200", 7.0)
    resumed = clock.run(send_all(pacing, clock, ["700100200"]))[0]

    assert resumed >= 1000.0 + 7.0
    assert pacing.paused == 1


def test_a_shorter_pause_never_shortens_the_wait_already_due() -> None:
    clock = FakeClock()
    pacing = pacer(clock)
    pacing.pause("-42", 10.0)

    pacing.pause("-42", 1.0)

    assert pacing.ready_at("-42") == pytest.approx(1010.0)


def test_ten_thousand_chats_at_the_overall_rate_within_limits() -> None:
    clock = FakeClock()
    pacing = pacer(clock)
    addresses = [str(-1000 - n) for n in range(500)] * 2 + [str(5000 + n) for n in range(9500)]

    stamps = clock.run(send_all(pacing, clock, addresses))

    assert len(stamps) == 10_500
    assert most_in_any_window(stamps, 1.0) == 30
    # The sliding window's 1% of slack is all the rate given up.
    assert 10_499 / 30 <= max(stamps) - min(stamps) <= 10_499 / 30 * 1.011


def test_sends_late_after_a_busy_moment_do_not_crowd_one_window() -> None:
    clock = FakeClock()
    pacing = pacer(clock)

    async def busy_moment() -> None:
        await clock.sleep(0.5)
        clock.now += 0.5  # the event loop was busy: sends booked meanwhile are late

    async def both() -> list[float]:
        lag = asyncio.ensure_future(busy_moment())
        stamps = await send_all(pacing, clock, [str(n) for n in range(120)])
        await lag
        return stamps

    stamps = clock.run(both())

    assert sorted(stamps).count(1001.0) >= 10
    assert most_in_any_window(stamps, 1.0) <= 30


def test_forgetting_chats_keeps_the_table_small() -> None:
    clock = FakeClock()
    pacing = pacer(clock)
    for n in range(100):
        pacing.book(str(n))
    clock.now += 10

    for n in range(100):
        pacing.forget(str(n))

    assert all(pacing.ready_at(str(n)) == 0.0 for n in range(100))


def test_a_migrated_chat_keeps_its_wait() -> None:
    clock = FakeClock()
    pacing = pacer(clock)
    pacing.pause("-42", 5.0)

    pacing.rename("-42", "-1004123456789")

    assert pacing.ready_at("-1004123456789") == pytest.approx(1005.0)


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError, match="overall_per_second"):
        Rates(overall_per_second=0)
