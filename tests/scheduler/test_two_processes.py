"""Two service processes on one database: every fire runs once, by the lease holder, and
when the holder dies the other takes over without a fire run twice or lost."""

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from scheduler.store import sync_url

LEASE_SECONDS = 3.0
HEARTBEAT_SECONDS = 0.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def two_services(db_url: str, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {
        **os.environ,
        "HELPDESK_DATA_DIR": str(tmp_path),
        "HELPDESK_DATABASE_URL": db_url,
        "HELPDESK_LEASE_SECONDS": str(LEASE_SECONDS),
        "HELPDESK_SCHEDULER_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "HELPDESK_LOG_LEVEL": "info",
    }
    env.pop("HELPDESK_TELEGRAM_TOKEN", None)
    processes = []
    for number in range(2):
        log = (tmp_path / f"service-{number}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [str(Path(sys.executable).parent / "helpdesk"), "serve"],
                env={**env, "HELPDESK_WEB_PORT": str(free_port())},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    yield processes
    for process in processes:
        if process.poll() is None:
            process.terminate()
            process.wait(10)


def heartbeat_runs(db_url: str) -> list[tuple[float, str]]:
    engine = create_engine(sync_url(db_url))
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT fire_time, holder FROM job_run"
                " WHERE job_id = 'heartbeat' ORDER BY fire_time"
            )
        ).all()
    engine.dispose()
    return [(_seconds(row.fire_time), row.holder) for row in rows]


def _seconds(value: object) -> float:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def wait_for_runs(db_url: str, count: int, timeout: float = 120.0) -> list[tuple[float, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            runs = heartbeat_runs(db_url)
        except Exception:  # the table is created by the first service to migrate... or not yet
            runs = []
        if len(runs) >= count:
            return runs
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} heartbeat runs after {timeout} s")


def test_two_services_fire_each_heartbeat_once_and_hand_over(
    two_services: list[subprocess.Popen[bytes]], db_url: str, tmp_path: Path
) -> None:
    runs = wait_for_runs(db_url, 6)
    holders = {holder for _, holder in runs}
    assert len(holders) == 1, f"two processes fired: {holders}"
    (first_holder,) = holders
    pid = int(first_holder.split(":")[1])
    victim = next(p for p in two_services if p.pid == pid)

    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    handed_over = wait_for_runs(db_url, len(runs) + 4, timeout=60)

    later = [(fire, holder) for fire, holder in handed_over if holder != first_holder]
    assert later and {holder for _, holder in later} != {first_holder}
    fires = [fire for fire, _ in handed_over]
    assert len(fires) == len(set(fires)), "a fire ran twice"
    steps = [round(b - a, 3) for a, b in itertools.pairwise(fires)]
    before = steps[: len(runs) - 1]
    # While one process held the lease, no fire was skipped.
    assert set(before) == {HEARTBEAT_SECONDS}, before
    # The dead holder's missed fires are run once, coalesced, by the new holder.
    assert max(steps) <= timedelta(seconds=LEASE_SECONDS * 3).total_seconds()
    logs = "".join(p.read_text() for p in tmp_path.glob("service-*.log"))
    assert "already run or not ours" not in logs
    assert logs.count("scheduler firing in") == 2  # once per holder, never both at once
