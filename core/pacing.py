"""Pacing of outgoing messages so that Telegram's flood limits are never the brake.

Telegram documents about 30 messages a second for a bot overall, 20 a minute to one
group and about one a second to one chat, and answers 429 with ``retry_after`` when a
bot goes faster. The outbox asks a :class:`Pacer` before every send; it books the
earliest moment that respects all three, and a 429 pauses that chat for at least what
Telegram asked.

Booking works in two steps so a chat that must wait never holds up the others: a send
first waits until its own chat is ready (:meth:`Pacer.ready_at`), and only then takes
the next overall slot (:meth:`Pacer.book`). Overall slots are evenly spaced (a generic
cell rate: each booking moves the next free slot on by one interval).

Even spacing alone is not enough when the process falls behind: sends whose slots
passed while the event loop was busy go out together, and with the ones on time after
them a window holds more than the limit (Telegram counts sends in a sliding window).
So the pacer also keeps the moments of its last sends and holds a send while a window
of ``WINDOW_MESSAGES`` is full.

The clock and the sleep are injected, so the arithmetic is tested without waiting.
"""

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# Telegram's overall limit is about 30 messages in any second: windows of 30 messages.
WINDOW_MESSAGES = 30
# Sends reach Telegram a little after we stamp them, unevenly: a window 1% longer than
# the limit's keeps most of that jitter from turning into 429s, for 1% of the rate.
WINDOW_SLACK = 1.01

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def is_group_address(address: str) -> bool:
    """Whether a Telegram chat id is a group, supergroup or channel (they are negative)."""
    return address.startswith("-") or address.startswith("@")


@dataclass(frozen=True)
class Rates:
    """The limits to keep: messages a second overall, a minute per group, a second per chat."""

    overall_per_second: float = 30.0
    group_per_minute: float = 20.0
    chat_per_second: float = 1.0

    def __post_init__(self) -> None:
        for name in ("overall_per_second", "group_per_minute", "chat_per_second"):
            if getattr(self, name) <= 0:
                raise ValueError(f"pacing rate {name} must be above 0, got {getattr(self, name)}")

    def chat_interval(self, address: str) -> float:
        """The least time between two sends to one chat."""
        interval = 1.0 / self.chat_per_second
        if is_group_address(address):
            interval = max(interval, 60.0 / self.group_per_minute)
        return interval


class Pacer:
    """Books send times for many chats at once within :class:`Rates`.

    State is one number per chat (when it may send next) and one overall, so pacing
    10,000 chats costs a dictionary of 10,000 floats. A chat's entry is dropped with
    :meth:`forget` once nothing more is queued for it.

    Args:
        rates: the limits.
        clock: seconds on a monotonic clock (``time.monotonic`` unless testing).
        sleep: how to wait (``asyncio.sleep`` unless testing).
    """

    def __init__(
        self, rates: Rates, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.rates = rates
        self.clock = clock
        self.sleep = sleep
        self._overall_interval = 1.0 / rates.overall_per_second
        self._next_overall = 0.0
        self._window_messages = min(WINDOW_MESSAGES, math.ceil(rates.overall_per_second))
        self._window = self._window_messages / rates.overall_per_second * WINDOW_SLACK
        self._recent: deque[float] = deque()
        # Sends waiting for room in the window queue here in order, so only the first
        # of them waits on the clock, however many there are.
        self._window_turn: asyncio.Lock | None = None
        self._next_by_chat: dict[str, float] = {}
        self.paused = 0

    def ready_at(self, address: str) -> float:
        """The clock time from which ``address`` may be sent to, as far as its chat goes."""
        return self._next_by_chat.get(address, 0.0)

    def book(self, address: str) -> float:
        """Take the next overall slot for ``address``; returns the clock time to send at.

        Call it once the chat is ready (see :meth:`wait_turn`): booking ahead of that would
        leave the overall slots before it unused.
        """
        now = self.clock()
        slot = max(now, self._next_overall, self.ready_at(address))
        self._next_overall = slot + self._overall_interval
        self._next_by_chat[address] = max(
            self._next_by_chat.get(address, 0.0), slot + self.rates.chat_interval(address)
        )
        return slot

    def pause(self, address: str, seconds: float) -> None:
        """Hold every send to ``address`` for at least ``seconds`` from now (after a 429)."""
        until = self.clock() + max(seconds, 0.0)
        self._next_by_chat[address] = max(self._next_by_chat.get(address, 0.0), until)
        self.paused += 1
        logger.debug("chat %s paused for %.2f s", address, seconds)

    def forget(self, address: str) -> None:
        """Drop what is known of a chat whose wait is over, to keep the table small."""
        if self._next_by_chat.get(address, 0.0) <= self.clock():
            self._next_by_chat.pop(address, None)

    def rename(self, old: str, new: str) -> None:
        """Carry a chat's wait over to its new address (a group upgraded to a supergroup)."""
        if old in self._next_by_chat:
            self._next_by_chat[new] = max(self._next_by_chat.pop(old), self.ready_at(new))

    def window_free_at(self) -> float:
        """When the sliding window of recent sends has room for one more."""
        now = self.clock()
        while self._recent and self._recent[0] <= now - self._window:
            self._recent.popleft()
        if len(self._recent) < self._window_messages:
            return now
        return self._recent[0] + self._window

    def sent(self) -> float:
        """Note that a send goes out now, for the sliding window; returns its moment."""
        now = self.clock()
        self._recent.append(now)
        return now

    def refused(self, address: str, sent_at: float, retry_after: float) -> None:
        """A send was answered 429: pause its chat, and free its place in the window.

        Telegram does not count a refused send against the limit, so neither do we;
        keeping its place would leave the rate short of one send for nothing.
        """
        self.pause(address, retry_after)
        if sent_at in self._recent:
            self._recent.remove(sent_at)
        # Its overall slot too: the window still guards the limit if slots now overlap.
        self._next_overall = max(self.clock(), self._next_overall - self._overall_interval)

    async def wait_turn(self, address: str) -> float:
        """Wait until a message may go to ``address`` now, book that moment, note it.

        Returns:
            The moment noted, for :meth:`refused` should the send be refused.
        """
        while (ready := self.ready_at(address)) > self.clock():
            await self.sleep(ready - self.clock())

        slot = self.book(address)
        if (delay := slot - self.clock()) > 0:
            await self.sleep(delay)

        if self._window_turn is None:
            self._window_turn = asyncio.Lock()
        async with self._window_turn:
            while (free := self.window_free_at()) > self.clock():
                await self.sleep(free - self.clock())
            return self.sent()
