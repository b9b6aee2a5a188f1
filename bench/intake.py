"""Intake benchmark: the full Telegram webhook stack against a bare aiogram echo bot.

Run::

    .venv/bin/python -m bench.intake [--cfas 50] [--answers 20] [--databases sqlite,postgresql]
                                     [--warmup 5] [--think-ms 0] [--profile]

Set-up, per database (a SQLite file in a temporary folder, or a PostgreSQL database created
for the run and dropped at the end):

* the fake Telegram Bot API (``tests/fakes/bot_api.py``) runs in its own process;
* the service under test runs under uvicorn (asyncio loop, h11, no access log, log level
  WARNING) in a *subprocess* of its own: ``python -m bench.intake _serve ...``. The load
  generator (this process) therefore never steals the service's event loop or GIL, and
  the service's CPU time can be read from ``/proc`` for the measured phase only;
* the load generator posts real-shaped Telegram updates to ``POST /webhooks/telegram``
  with the secret header, over one keep-alive aiohttp session (same client, connection
  limit and concurrency for both setups).

Two setups are measured, one after the other, against the same fake Bot API process:

``full``  ``core.web.create_app``: ledger insert, background aiogram dispatch, the engine's
          transaction (ledger mark + conversation + answers, committed), then sendMessage.
``bare``  a FastAPI route under uvicorn that validates the update, hands it to a bare
          aiogram ``Dispatcher.feed_update`` in a background task and answers 200; its
          only handler is ``message.answer(message.text)``.

Each simulated CFA answers one update at a time and waits for the bot's whole reply to that
update (the exact number of sendMessage calls the step produces: 1 for most answers, 2 for
``/survey``/``/report`` (intro + question) and for the ``review:send`` button (receipt +
menu); always 1 for the echo bot). Latency is measured from just before the POST until the
fake Bot API *received* the last sendMessage of that reply (the fake's own ``at`` stamp),
so how often this process polls the fake does not enter the figure. One poller fetches
only new calls (``/_fake/calls?method=sendMessage&since=N``), and the fake's call log is
cleared between phases so each poll stays small.

Conversation per CFA (typed answers; even CFAs run the monthly survey, odd ones the ad-hoc
report, in a loop): ``/survey`` → typed answers ("1", "3", "yes", ...) → at review the
``review:send`` button (a callback_query; the only way out of review) → ``/survey`` again.
The echo bot gets the same update sequence, with the button press sent as the text
``review:send`` so that its only (message) handler answers it.

Phases per setup: registration (``/start <invite>`` for every CFA; for the full stack this
claims a real invite), warm-up (``--warmup`` steps per CFA), then the measured phase
(``--answers`` steps per CFA, all CFAs concurrently, no think time unless ``--think-ms``).
After the full stack is stopped the database is checked: every posted update is in the
ledger and marked processed, and one report exists per ``review:send`` pressed.

``--profile`` additionally runs the full stack's server under pyinstrument during its
measured phase only and prints where its main thread's time goes (the figures of a
profiled run are slowed by the profiler: use a run without it for the numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hmac
import itertools
import json
import logging
import math
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from fastapi import Request  # module level: FastAPI resolves the route's annotations here

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-webhook-secret"
WEBHOOK_PATH = "/webhooks/telegram"
TARGET_RATIO = 0.5
TARGET_P99_MS = 25.0
REPLY_TIMEOUT = 60.0
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


# ------------------------------------------------------------------------ conversations


@dataclass(frozen=True)
class Step:
    """One update a CFA sends, and how many sendMessage calls the full stack answers with."""

    kind: str  # "text" or "button"
    value: str
    replies: int = 1


MONTHLY = (
    Step("text", "/survey", 2),  # intro + question 1
    Step("text", "1"),  # water supply: regular
    Step("text", "3"),  # households affected
    Step("text", "yes"),  # health post open
    Step("text", "1"),  # problems: service delivery
    Step("text", "skip"),  # last public meeting (optional)
    Step("text", "Gajuri bazaar"),  # location, typed
    Step("text", "All fine this month"),  # notes -> review
    Step("button", "review:send", 2),  # receipt + menu
)
REPORT = (
    Step("text", "/report", 2),
    Step("text", "1"),  # category
    Step("text", "The water tap near the school has been broken for three weeks."),
    Step("text", "Gajuri bazaar"),  # location, typed
    Step("text", "2"),  # urgency: medium
    Step("text", "skip"),  # photo (optional)
    Step("text", "skip"),  # voice note (optional) -> review
    Step("button", "review:send", 2),
)


class Updates:
    """Real-shaped updates (the recorded fixtures, re-addressed), with unique update ids."""

    def __init__(self) -> None:
        from tests.fakes.bot_api import load_update

        self._text = load_update("text_nepali_answer")
        self._button = load_update("callback_choice")
        self._ids = itertools.count(950_000_000 + random.randrange(10_000_000))

    def text(self, chat_id: int, text: str) -> dict[str, Any]:
        update = copy.deepcopy(self._text)
        update["update_id"] = update_id = next(self._ids)
        message = update["message"]
        message.update(message_id=update_id % 1_000_000, date=int(time.time()), text=text)
        self._address(chat_id, message["from"], message["chat"])
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"offset": 0, "length": length, "type": "bot_command"}]
        return update

    def button(self, chat_id: int, data: str) -> dict[str, Any]:
        update = copy.deepcopy(self._button)
        update["update_id"] = update_id = next(self._ids)
        query = update["callback_query"]
        query.update(id=str(update_id), data=data)
        query["message"]["message_id"] = 1
        self._address(chat_id, query["from"], query["message"]["chat"], query["message"]["from"])
        return update

    @staticmethod
    def _address(chat_id: int, *people: dict[str, Any]) -> None:
        for person in people:
            person["id"] = chat_id
        people[0]["language_code"] = "en"


@dataclass
class Cfa:
    """One simulated CFA: a chat, a looping script and where in it they are."""

    chat_id: int
    script: tuple[Step, ...]
    invite: str
    position: int = 0

    def take(self, count: int) -> list[Step]:
        steps = [self.script[(self.position + i) % len(self.script)] for i in range(count)]
        self.position += count
        return steps


# ------------------------------------------------------------------------ reply watcher


@dataclass
class _Waiter:
    count: int
    future: asyncio.Future[list[dict[str, Any]]]
    calls: list[dict[str, Any]] = field(default_factory=list)


class ReplyWatcher:
    """Polls the fake for new sendMessage calls and hands them to the chat waiting for them.

    Only calls newer than the last poll are transferred. Latency is computed from each
    call's ``at`` (stamped by the fake on arrival), not from when this poller saw it.
    """

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.url = f"{base_url}/_fake/calls"
        self.next = 0
        self.waiting: dict[int, _Waiter] = {}
        self.unexpected = 0
        self.failed = 0
        self.polls = 0
        self._task: asyncio.Task[None] | None = None

    def expect(self, chat_id: int, count: int) -> asyncio.Future[list[dict[str, Any]]]:
        assert chat_id not in self.waiting, f"chat {chat_id} already waits for a reply"
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.waiting[chat_id] = _Waiter(count, future)
        return future

    def forget(self, chat_id: int) -> None:
        self.waiting.pop(chat_id, None)

    async def __aenter__(self) -> ReplyWatcher:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            params = {"method": "sendMessage", "since": str(self.next)}
            async with self.http.get(self.url, params=params) as response:
                body = await response.json()
            self.polls += 1
            self.next = body["next"]
            for call in body["calls"]:
                self._deliver(call)
            if not body["calls"]:
                await asyncio.sleep(0.0005)

    def _deliver(self, call: dict[str, Any]) -> None:
        if call["status"] != 200:
            self.failed += 1
        waiter = self.waiting.get(call["params"].get("chat_id"))
        if waiter is None:
            self.unexpected += 1
            return
        waiter.calls.append(call)
        if len(waiter.calls) >= waiter.count:
            del self.waiting[call["params"]["chat_id"]]
            if not waiter.future.done():
                waiter.future.set_result(waiter.calls)


# ------------------------------------------------------------------------ load driver


@dataclass
class PhaseResult:
    updates: int
    seconds: float
    latencies_ms: list[float]
    acks_ms: list[float]
    replies: int
    content_errors: int

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0


async def drive(
    http: aiohttp.ClientSession,
    service_url: str,
    watcher: ReplyWatcher,
    updates: Updates,
    cfas: list[Cfa],
    steps: int,
    *,
    bare: bool,
    think_ms: float = 0.0,
    first: Callable[[Cfa], Step] | None = None,
) -> PhaseResult:
    """Every CFA sends ``steps`` updates of its script (or ``first(cfa)``), concurrently."""
    url = service_url + WEBHOOK_PATH
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    # Everything a CFA will post is built and encoded before the clock starts.
    plans: list[tuple[Cfa, list[tuple[Step, bytes]]]] = []
    for cfa in cfas:
        script = [first(cfa)] * steps if first is not None else cfa.take(steps)
        plan = []
        for step in script:
            if step.kind == "button" and not bare:
                update = updates.button(cfa.chat_id, step.value)
            else:
                update = updates.text(cfa.chat_id, step.value)
            plan.append((step, json.dumps(update).encode()))
        plans.append((cfa, plan))

    latencies: list[float] = []
    acks: list[float] = []
    counters = {"replies": 0, "content_errors": 0}
    go = asyncio.Event()

    async def converse(cfa: Cfa, plan: list[tuple[Step, bytes]]) -> None:
        await go.wait()
        if think_ms > 0:  # paced CFAs start spread out, not as one burst
            await asyncio.sleep(random.uniform(0, think_ms) / 1000)
        for step, body in plan:
            expected = 1 if bare else step.replies
            reply = watcher.expect(cfa.chat_id, expected)
            started = time.time()
            async with http.post(url, data=body, headers=headers) as response:
                await response.read()
                acked = time.time()
                if response.status != 200:
                    raise RuntimeError(f"webhook answered {response.status} to chat {cfa.chat_id}")
            try:
                calls = await asyncio.wait_for(reply, REPLY_TIMEOUT)
            except TimeoutError:
                watcher.forget(cfa.chat_id)
                raise RuntimeError(
                    f"chat {cfa.chat_id}: no complete reply to {step.value!r} after "
                    f"{REPLY_TIMEOUT:.0f}s (expected {expected} sendMessage)"
                ) from None
            latencies.append((calls[-1]["at"] - started) * 1000)
            acks.append((acked - started) * 1000)
            counters["replies"] += len(calls)
            if (
                not bare
                and step.value == "review:send"
                and "NP-" not in calls[0]["params"]["text"]
            ):
                counters["content_errors"] += 1
            if think_ms > 0:
                await asyncio.sleep(random.uniform(0.5, 1.5) * think_ms / 1000)

    tasks = [asyncio.create_task(converse(cfa, plan)) for cfa, plan in plans]
    await asyncio.sleep(0.05)
    begin = time.perf_counter()
    go.set()
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    seconds = time.perf_counter() - begin
    return PhaseResult(
        updates=sum(len(plan) for _, plan in plans),
        seconds=seconds,
        latencies_ms=latencies,
        acks_ms=acks,
        replies=counters["replies"],
        content_errors=counters["content_errors"],
    )


# ------------------------------------------------------------------------ processes


class ServerProcess:
    """``python -m bench.intake _serve ...`` on a free port of 127.0.0.1."""

    def __init__(self, args: list[str], workdir: Path) -> None:
        self.stderr_path = workdir / f"server-{uuid.uuid4().hex[:6]}.log"
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.intake", "_serve", *args],
            cwd=PROJECT_ROOT,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
                ),
            },
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.url = ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.process.stdout], [], [], remaining)
            if not readable:
                continue
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited early:\n{self.log_tail()}")
            if line.startswith("ready "):
                self.url = f"http://127.0.0.1:{int(line.split()[1])}"
                return
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads) so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def log_tail(self, lines: int = 40) -> str:
        self._stderr.flush()
        text = self.stderr_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


def machine_busy_seconds() -> float:
    """CPU seconds spent not idle by the whole machine (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def postgres_cpu_ticks() -> dict[int, int]:
    """CPU ticks of every local PostgreSQL server process, by pid."""
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            if text.split("(", 1)[1].split(")", 1)[0] == "postgres":
                fields = text.rsplit(")", 1)[1].split()
                ticks[int(stat.parent.name)] = int(fields[11]) + int(fields[12])
    return ticks


def postgres_cpu_since(before: dict[int, int]) -> float:
    """CPU seconds PostgreSQL processes used since ``before`` (ones that exited are lost)."""
    after = postgres_cpu_ticks()
    return sum(max(0, t - before.get(pid, 0)) for pid, t in after.items()) / CLOCK_TICKS


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# ------------------------------------------------------------------------ databases


async def _pg_admin(server: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(f"{server}/postgres", timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def database(label: str, workdir: Path, pg_server: str) -> AsyncIterator[str]:
    """A migrated, empty database of kind ``label``; removed afterwards."""
    from tests.conftest import migrate

    if label == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'helpdesk.db'}"
        await asyncio.to_thread(migrate, url)
        yield url
        return

    name = f"helpdesk_bench_{uuid.uuid4().hex[:10]}"
    await _pg_admin(pg_server, f'CREATE DATABASE "{name}"')
    try:
        url = f"{pg_server.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
        await asyncio.to_thread(migrate, url)
        yield url
    finally:
        await _pg_admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_settings(url: str, data_dir: Path, api_base: str) -> Any:
    from core.config import Settings
    from tests.fakes.bot_api import DEFAULT_BOT_USERNAME, DEFAULT_TOKEN

    return Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=url,
        content_dir=PROJECT_ROOT / "content",
        locales_dir=PROJECT_ROOT / "locales",
        log_level="WARNING",
        telegram_token=DEFAULT_TOKEN,
        telegram_bot_username=DEFAULT_BOT_USERNAME,
        telegram_api_base=api_base,
        telegram_webhook_url="https://helpdesk.example.org/webhooks/telegram",
        telegram_webhook_secret=SECRET,
    )


async def create_invites(url: str, data_dir: Path, api_base: str, cfas: list[Cfa]) -> None:
    from core.services import Services
    from tests.helpers import make_invite

    services = Services.build(bench_settings(url, data_dir, api_base))
    try:
        await services.sync_content()
        for i, cfa in enumerate(cfas):
            await make_invite(services, cfa.invite, language="en", name=f"CFA {i}")
    finally:
        await services.close()


async def ledger_check(url: str) -> dict[str, int]:
    """What the full stack left in the database: ledger rows, unprocessed rows, reports."""
    from sqlalchemy import func, select

    from core.db import Database
    from core.models import ProcessedUpdate, Report

    db = Database(url)
    try:
        async with db.session() as session:
            total = await session.scalar(select(func.count()).select_from(ProcessedUpdate))
            pending = await session.scalar(
                select(func.count())
                .select_from(ProcessedUpdate)
                .where(ProcessedUpdate.processed_at.is_(None))
            )
            reports = await session.scalar(select(func.count()).select_from(Report))
    finally:
        await db.dispose()
    return {
        "ledger": int(total or 0),
        "unprocessed": int(pending or 0),
        "reports": int(reports or 0),
    }


# ------------------------------------------------------------------------ one setup


@dataclass
class SetupResult:
    setup: str
    phase: PhaseResult
    cpu_seconds: float
    fake_cpu_seconds: float
    loadgen_cpu_seconds: float
    machine_busy_seconds: float
    postgres_cpu_seconds: float
    checks: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None

    @property
    def p50(self) -> float:
        return percentile(self.phase.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.phase.latencies_ms, 99)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


async def run_setup(
    setup: str,
    *,
    db_label: str,
    url: str,
    workdir: Path,
    fake: Any,
    http: aiohttp.ClientSession,
    watcher: ReplyWatcher,
    updates: Updates,
    args: argparse.Namespace,
    chat_base: int,
) -> SetupResult:
    bare = setup == "bare"
    script_of = (MONTHLY, REPORT)
    cfas = [
        Cfa(chat_base + i, script_of[i % 2], invite=f"B{chat_base % 100_000:05d}{i:04d}")
        for i in range(args.cfas)
    ]
    data_dir = workdir / setup
    data_dir.mkdir(exist_ok=True)
    profile_out = workdir / f"profile-{db_label}-{setup}" if (args.profile and not bare) else None
    if not bare:
        await create_invites(url, data_dir, fake.base_url, cfas)

    serve_args = [
        "--app",
        setup,
        "--api-base",
        fake.base_url,
        "--database-url",
        url,
        "--data-dir",
        str(data_dir),
    ]
    if profile_out is not None:
        serve_args += ["--profile-out", str(profile_out)]
    server = ServerProcess(serve_args, workdir)
    try:
        await asyncio.to_thread(server.wait_ready)
        checks: dict[str, Any] = {}
        # Registration: every CFA claims its invite with /start <code> (welcome + menu).
        await drive(
            http,
            server.url,
            watcher,
            updates,
            cfas,
            1,
            bare=bare,
            first=lambda cfa: Step("text", f"/start {cfa.invite}", 2),
        )
        registered = len(cfas)
        # Warm-up, all CFAs concurrently, same script as measured.
        if args.warmup:
            await drive(
                http,
                server.url,
                watcher,
                updates,
                cfas,
                args.warmup,
                bare=bare,
                think_ms=args.think_ms,
            )
        await asyncio.to_thread(fake.clear)
        if profile_out is not None:
            server.signal(signal.SIGUSR1)
            await asyncio.sleep(0.2)
        cpu_before = server.cpu_seconds()
        fake_before = process_cpu(fake.process.pid)
        own_before = time.process_time()
        machine_before = machine_busy_seconds()
        pg_before = postgres_cpu_ticks()
        phase = await drive(
            http,
            server.url,
            watcher,
            updates,
            cfas,
            args.answers,
            bare=bare,
            think_ms=args.think_ms,
        )
        cpu = server.cpu_seconds() - cpu_before
        own_cpu = time.process_time() - own_before
        machine = machine_busy_seconds() - machine_before
        pg_cpu = postgres_cpu_since(pg_before)
        fake_cpu = process_cpu(fake.process.pid) - fake_before
        profile_text = None
        if profile_out is not None:
            server.signal(signal.SIGUSR2)
            done = profile_out.with_suffix(".done")
            for _ in range(600):
                if done.exists():
                    break
                await asyncio.sleep(0.1)
            profile_text = (
                profile_out.with_suffix(".summary.txt").read_text()
                if done.exists()
                else "(profile not written)"
            )
    except Exception:
        print(f"--- {setup} server log ---\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        await asyncio.to_thread(server.stop)

    total_posted = registered + args.cfas * (args.warmup + args.answers)
    if not bare:
        found = await ledger_check(url)
        sends = sum(
            1
            for cfa in cfas
            for i in range(args.warmup + args.answers)
            if cfa.script[i % len(cfa.script)].value == "review:send"
        )
        checks = {
            "posted": total_posted,
            **found,
            "reports_expected": sends,
            "ok": found["ledger"] == total_posted
            and found["unprocessed"] == 0
            and found["reports"] == sends
            and phase.content_errors == 0,
        }
    return SetupResult(setup, phase, cpu, fake_cpu, own_cpu, machine, pg_cpu, checks, profile_text)


# ------------------------------------------------------------------------ reporting


def describe(db_label: str, results: dict[str, SetupResult], args: argparse.Namespace) -> str:
    full, bare = results["full"], results["bare"]
    ratio = full.phase.rate / bare.phase.rate if bare.phase.rate else math.nan
    lines = [
        "",
        f"=== {db_label}: {args.cfas} concurrent CFAs x {args.answers} updates "
        f"(+{args.warmup} warm-up each), think time {args.think_ms:g} ms ===",
        "service: uvicorn (asyncio, h11) in its own subprocess; fake Bot API in its own "
        "process; load generator + reply poller in the bench process",
        f"{'setup':<16}{'updates/s':>10}{'msgs/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'ack p50':>9}{'svc CPU':>9}{'CPU/upd':>9}",
    ]
    for result in (full, bare):
        phase = result.phase
        lines.append(
            f"{result.setup:<16}{phase.rate:>10.1f}{phase.replies / phase.seconds:>9.1f}"
            f"{result.p50:>9.1f}{result.p99:>9.1f}{max(phase.latencies_ms):>9.1f}"
            f"{percentile(phase.acks_ms, 50):>9.1f}"
            f"{100 * result.cpu_seconds / phase.seconds:>8.0f}%"
            f"{1000 * result.cpu_seconds / phase.updates:>7.2f}ms"
        )
    little = args.cfas / full.phase.rate * 1000 if full.phase.rate else math.nan
    full_cpu = full.cpu_seconds / full.phase.updates
    bare_cpu = bare.cpu_seconds / bare.phase.updates
    cpu_ratio = bare_cpu / full_cpu if full_cpu else math.nan
    lines += [
        f"ratio full/bare updates/s: {ratio:.3f}  (target >= {TARGET_RATIO}: "
        f"{'MET' if ratio >= TARGET_RATIO else 'MISSED'})",
        "  (with --think-ms the offered load is fixed, so this ratio says nothing about "
        "capacity; see CPU per update)"
        if args.think_ms > 0
        else "",
        f"  CPU-normalised ratio (bare CPU per update / full CPU per update, robust to other "
        f"load on the machine): {cpu_ratio:.3f}",
        f"full-stack p99: {full.p99:.1f} ms  (target <= {TARGET_P99_MS:g} ms at {args.cfas} "
        f"concurrent: {'MET' if full.p99 <= TARGET_P99_MS else 'MISSED'})",
        f"  (closed loop, no think time: latency ~ concurrency / rate = {little:.0f} ms "
        "for the full stack)"
        if args.think_ms == 0
        else "",
        f"measured phase: full {full.phase.seconds:.2f} s, bare {bare.phase.seconds:.2f} s",
        *(
            f"  {r.setup}: CPU as % of one core: service {pct(r.cpu_seconds, r)}, "
            f"fake Bot API {pct(r.fake_cpu_seconds, r)}, load generator "
            f"{pct(r.loadgen_cpu_seconds, r)}, postgres {pct(r.postgres_cpu_seconds, r)}, "
            f"anything else on the machine {pct(other_cpu(r), r)}; "
            f"machine total {pct(r.machine_busy_seconds, r)} of {CORES * 100}%"
            for r in (full, bare)
        ),
        f"reply poller: {full.checks.get('polls', 0)} polls of the fake over the whole run",
        f"database check (full stack): {full.checks}",
    ]
    return "\n".join(line for line in lines if line)


def other_cpu(r: SetupResult) -> float:
    ours = r.cpu_seconds + r.fake_cpu_seconds + r.loadgen_cpu_seconds + r.postgres_cpu_seconds
    return max(0.0, r.machine_busy_seconds - ours)


def pct(seconds: float, result: SetupResult) -> str:
    return f"{100 * seconds / result.phase.seconds:.0f}%"


def final_table(all_results: dict[str, dict[str, SetupResult]], args: argparse.Namespace) -> str:
    header = (
        f"{'database':<11}{'full/s':>9}{'bare/s':>9}{'ratio':>7}{'full p50':>10}"
        f"{'full p99':>10}{'bare p50':>10}{'bare p99':>10}  {'ratio>=0.5':<11}{'p99<=25ms':<10}"
    )
    lines = ["", f"Summary ({args.cfas} concurrent CFAs, {args.answers} updates each)", header]
    for label, results in all_results.items():
        full, bare = results["full"], results["bare"]
        ratio = full.phase.rate / bare.phase.rate
        lines.append(
            f"{label:<11}{full.phase.rate:>9.1f}{bare.phase.rate:>9.1f}{ratio:>7.2f}"
            f"{full.p50:>10.1f}{full.p99:>10.1f}{bare.p50:>10.1f}{bare.p99:>10.1f}  "
            f"{'MET' if ratio >= TARGET_RATIO else 'MISSED':<11}"
            f"{'MET' if full.p99 <= TARGET_P99_MS else 'MISSED':<10}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------ main


async def bench_database(
    db_label: str, args: argparse.Namespace, index: int
) -> dict[str, SetupResult]:
    from tests.fakes.bot_api import FakeBotApi

    with tempfile.TemporaryDirectory(prefix=f"helpdesk-bench-{db_label}-") as tmp:
        workdir = Path(tmp)
        async with database(db_label, workdir, args.pg) as url:
            fake = await asyncio.to_thread(FakeBotApi.spawn_process)
            try:
                connector = aiohttp.TCPConnector(limit=args.cfas + 4)
                timeout = aiohttp.ClientTimeout(total=REPLY_TIMEOUT)
                async with (
                    aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
                    aiohttp.ClientSession(timeout=timeout) as poll_http,
                    ReplyWatcher(poll_http, fake.base_url) as watcher,
                ):
                    updates = Updates()
                    results = {}
                    for n, setup in enumerate(("full", "bare")):
                        results[setup] = await run_setup(
                            setup,
                            db_label=db_label,
                            url=url,
                            workdir=workdir,
                            fake=fake,
                            http=http,
                            watcher=watcher,
                            updates=updates,
                            args=args,
                            chat_base=700_000_000 + index * 1_000_000 + n * 100_000,
                        )
                    results["full"].checks["polls"] = watcher.polls
                    results["full"].checks["stray_replies"] = watcher.unexpected
                    results["full"].checks["failed_sends"] = watcher.failed
            finally:
                await asyncio.to_thread(fake.close)
            if args.profile and results["full"].profile:
                kept = []
                for suffix in (".txt", ".pyisession"):
                    source = workdir / f"profile-{db_label}-full{suffix}"
                    keep = (
                        Path(tempfile.gettempdir()) / f"helpdesk-bench-profile-{db_label}{suffix}"
                    )
                    if source.exists():
                        keep.write_bytes(source.read_bytes())
                        kept.append(str(keep))
                results["full"].checks["profile_files"] = kept
    return results


def code_version() -> str:
    """The commit measured, and how many files differ from it (others may be editing)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return f"git {head}" + (f" + {len(dirty)} modified file(s)" if dirty else "")


async def main_async(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    print(
        f"intake benchmark: {args.cfas} CFAs x {args.answers} updates, databases "
        f"{', '.join(args.databases)}; code {code_version()}; {CORES} CPU core(s), "
        f"Python {sys.version.split()[0]}",
        flush=True,
    )
    all_results: dict[str, dict[str, SetupResult]] = {}
    for index, label in enumerate(args.databases):
        all_results[label] = await bench_database(label, args, index)
        print(describe(label, all_results[label], args), flush=True)
        if args.profile and all_results[label]["full"].profile:
            print(f"\n--- profile of the full stack on {label} (measured phase) ---")
            print(all_results[label]["full"].profile, flush=True)
    print(final_table(all_results, args))
    print(
        f"\ntotal bench time {time.perf_counter() - started:.1f} s"
        + ("  (PROFILED RUN: figures slowed by the profiler)" if args.profile else "")
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cfas", type=int, default=50, help="concurrent simulated CFAs")
    parser.add_argument("--answers", type=int, default=20, help="measured updates per CFA")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up updates per CFA")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="mean pause between a reply and the next answer (default 0)",
    )
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server (127.0.0.1 only)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the full stack's measured phase with pyinstrument",
    )
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(args.databases) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    host = args.pg.split("@")[-1].split(":")[0].split("/")[0]
    if host not in ("127.0.0.1", "localhost"):
        parser.error("--pg must point at 127.0.0.1")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_serve":
        serve_main(argv[1:])
        return
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(parse_args(argv)))


# ------------------------------------------------------------------------ server side


def build_bare_app(token: str, api_base: str) -> Any:
    """The baseline: FastAPI route -> background ``Dispatcher.feed_update`` -> echo."""
    from aiogram import Dispatcher
    from aiogram.types import Message, Update
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from bot.channels.telegram import create_bot

    bot = create_bot(token, api_base)
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    tasks: set[asyncio.Task[Any]] = set()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await bot.session.close()

    async def webhook(request: Request) -> Any:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), SECRET.encode()):
            return JSONResponse({"detail": "forbidden"}, status_code=403)
        payload = await request.json()
        update = Update.model_validate(payload, context={"bot": bot})
        task = asyncio.create_task(dispatcher.feed_update(bot, update))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return JSONResponse({"ok": True})

    app = FastAPI(title="bare aiogram echo", lifespan=lifespan)
    app.add_api_route(WEBHOOK_PATH, webhook, methods=["POST"])
    return app


def serve_main(argv: list[str]) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.intake _serve")
    parser.add_argument("--app", choices=("full", "bare"), required=True)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--profile-out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    if args.app == "full":
        from core.web import create_app

        app = create_app(bench_settings(args.database_url, Path(args.data_dir), args.api_base))
    else:
        from tests.fakes.bot_api import DEFAULT_TOKEN

        app = build_bare_app(DEFAULT_TOKEN, args.api_base)

    async def serve() -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        if args.profile_out:
            _install_profiler(Path(args.profile_out))
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"ready {port}", flush=True)
        await task

    asyncio.run(serve())


def _install_profiler(out: Path) -> None:
    """SIGUSR1 starts a pyinstrument profile of this (main) thread, SIGUSR2 writes it."""
    from pyinstrument import Profiler

    interval = float(os.environ.get("BENCH_PROFILE_INTERVAL", "0.002"))
    profiler = Profiler(interval=interval, async_mode="disabled")
    loop = asyncio.get_running_loop()

    def start() -> None:
        profiler.start()

    def stop() -> None:
        session = profiler.stop()
        out.with_suffix(".txt").write_text(
            profiler.output_text(unicode=True, color=False, show_all=False)
        )
        session.save(str(out.with_suffix(".pyisession")))
        out.with_suffix(".summary.txt").write_text(summarise_profile(session))
        out.with_suffix(".done").write_text("ok")

    loop.add_signal_handler(signal.SIGUSR1, start)
    loop.add_signal_handler(signal.SIGUSR2, stop)


def _category(path: str) -> str | None:
    """Where a frame's code lives; None for the standard library (charged to its caller)."""
    if "site-packages/" in path:
        package = path.split("site-packages/", 1)[1].split("/", 1)[0]
        return package.removesuffix(".py")
    root = str(PROJECT_ROOT) + "/"
    if path.startswith(root) and not path.startswith(root + "bench/"):
        return "project " + path[len(root) :]
    return None


def summarise_profile(session: Any) -> str:
    """Main-thread time by where it is spent: waiting in epoll, or the innermost
    non-stdlib package (stdlib frames are charged to the library that called them)."""
    root = session.root_frame(trim_stem=False)
    if root is None:
        return "(no samples)"
    by_category: dict[str, float] = {}
    self_by_function: dict[str, float] = {}
    inclusive: dict[str, float] = {}

    def visit(frame: Any, owner: str | None, active: frozenset[str], parent_key: str) -> None:
        path = frame.file_path or ""
        synthetic = frame.function.startswith("[")  # "[self]": time of the parent itself
        category = None if synthetic else _category(path)
        if frame.function == "__class_getitem__" and "pydantic" in path:
            # aiogram's check_response does Response[T] per call; pydantic caches that
            # class weakly, so after a garbage collection it is built again (~5 ms).
            category = "pydantic: Response[T] rebuilt after GC (aiogram check_response)"
        elif owner is not None and owner.startswith("pydantic: Response"):
            category = None
        owner = category or owner
        self_time = frame.time - sum(child.time for child in frame.children)
        key = (
            parent_key
            if synthetic
            else f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        )
        if self_time > 0:
            if "epoll.poll" in key or ("selectors" in key and " select " in f" {key} "):
                name = "idle: event loop waiting in epoll"
            elif owner is None:
                name = "stdlib: asyncio loop / other"
            else:
                name = owner
            by_category[name] = by_category.get(name, 0.0) + self_time
            self_by_function[key] = self_by_function.get(key, 0.0) + self_time
        if category and category.startswith("project") and key not in active:
            inclusive[key] = inclusive.get(key, 0.0) + frame.time
            active = active | {key}
        for child in frame.children:
            visit(child, owner, active, key)

    sys.setrecursionlimit(20_000)
    visit(root, None, frozenset(), "")
    total = root.time or 1.0
    busy = total - by_category.get("idle: event loop waiting in epoll", 0.0)
    lines = [
        f"main thread: {total:.2f} s sampled, {busy:.2f} s busy ({100 * busy / total:.0f}%)",
        "time by package (self time; stdlib charged to the calling package):",
    ]
    for name, seconds in sorted(by_category.items(), key=lambda kv: -kv[1])[:16]:
        lines.append(f"  {100 * seconds / total:5.1f}%  {seconds:7.3f} s  {name}")
    lines.append("project functions, inclusive time (awaited I/O not included):")
    for name, seconds in sorted(inclusive.items(), key=lambda kv: -kv[1])[:16]:
        lines.append(f"  {100 * seconds / total:5.1f}%  {seconds:7.3f} s  {name}")
    lines.append("hottest functions (self time):")
    for name, seconds in sorted(self_by_function.items(), key=lambda kv: -kv[1])[:14]:
        lines.append(f"  {100 * seconds / total:5.1f}%  {seconds:7.3f} s  {name}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
