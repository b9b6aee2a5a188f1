"""An editor sets a station up from the command line: approves a rendered bulletin, gives
the station its token, watches the station fetch it, and records the airing.

The ``helpdesk`` commands run in this process (Typer's runner) on a fresh data folder,
so the render and the station's downloads in between take no process start-ups.
"""

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from core.cli import app
from core.config import PROJECT_ROOT, get_settings
from core.services import Services
from tests.conftest import migrate
from tests.core.station_audio import client_of, quiet_settings

PUBLIC_URL = "https://radio.example.org"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HELPDESK_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("HELPDESK_CONTENT_DIR", str(PROJECT_ROOT / "content"))
    monkeypatch.delenv("HELPDESK_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    migrate(f"sqlite+aiosqlite:///{tmp_path / 'helpdesk.db'}")
    yield tmp_path
    get_settings.cache_clear()


def helpdesk(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> str:
    result = helpdesk(*args)
    assert result.exit_code == 0, result.output
    return result.output


async def fetch(data_dir: Path, path: str, **headers: str) -> httpx.Response:
    """One request of the station to the real app on the same data folder."""
    url = f"sqlite+aiosqlite:///{data_dir / 'helpdesk.db'}"
    services = Services.build(quiet_settings(url, data_dir, PROJECT_ROOT / "content"))
    try:
        async with client_of(services) as client:
            return await client.get(path, headers=headers)
    finally:
        await services.close()


def test_an_editor_approves_gives_a_token_and_sees_the_station_fetch_the_bulletin(
    data_dir: Path,
) -> None:
    ok("content", "load")
    ok("bulletin", "compose", "--station", "radio-dhading", "--date", "2026-12-04")
    # A short script renders in a fraction of the composed one's time.
    ok("bulletin", "drop", "1", "2", "--language", "ne")
    ok("bulletin", "edit", "1", "1", "--language", "ne", "--text", "नमस्कार।")
    ok("bulletin", "edit", "1", "2", "--language", "ne", "--text", "धन्यवाद।")
    ok("bulletin", "render", "1")
    listed = ok("station", "list")
    assert re.search(r"radio-dhading .* ne .* fri 19:00 .* no token +never", listed)
    assert "no approved bulletin yet" in ok("station", "downloads", "radio-dhading")

    too_early = helpdesk("bulletin", "aired", "1")
    assert too_early.exit_code == 1 and "not approved" in too_early.output
    assert "approved" in ok("bulletin", "approve", "1")
    again = helpdesk("bulletin", "approve", "1")
    assert again.exit_code == 1 and "already approved" in again.output

    printed = ok("station", "token", "radio-dhading")
    token = re.search(r"token for radio-dhading: (\S+)", printed).group(1)  # type: ignore[union-attr]
    assert len(token) == 32
    base = f"{PUBLIC_URL}/stations/radio-dhading"
    assert f"{base}/feed.xml?token={token}" in printed
    assert f"{base}/ne/feed.xml?token={token}" in printed
    assert f"{base}/ne/latest.mp3?token={token}" in printed
    latest = f"/stations/radio-dhading/ne/latest.mp3?token={token}"

    first = asyncio.run(fetch(data_dir, latest, Range="bytes=0-99", **{"User-Agent": "Rivendell"}))
    assert first.status_code == 206
    log = ok("station", "downloads", "radio-dhading")
    assert re.search(r"GET +206 +1 ne +bytes=0-99 +100 +127\.0\.0\.1, Rivendell", log)
    assert "ne: not yet fetched in full" in log and token not in log

    rest = asyncio.run(fetch(data_dir, latest, Range="bytes=100-"))
    assert rest.status_code == 206
    log = ok("station", "downloads", "radio-dhading")
    assert "ne: fetched in full at 2026-" in log, "two ranges together are the whole file"
    assert len(ok("station", "downloads", "radio-dhading", "--limit", "1").splitlines()) == 5

    assert re.search(r"radio-dhading .* token set +2026-\S+ \S+ \(206\)", ok("station", "list"))
    ok("station", "token", "radio-dhading")
    assert asyncio.run(fetch(data_dir, latest)).status_code == 403, "the old token is void"

    aired = ok("bulletin", "aired", "1")
    assert "aired" in aired and "confirmed via staff" in aired
    assert ok("bulletin", "aired", "1") == aired
    unknown = helpdesk("station", "downloads", "radio-nowhere")
    assert unknown.exit_code == 1 and "no station 'radio-nowhere'" in unknown.output
