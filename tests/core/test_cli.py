"""The ``helpdesk`` command as a new user runs it, in a fresh data folder."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT

HELPDESK = str(Path(sys.executable).parent / "helpdesk")


def run(
    data_dir: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HELPDESK_DATA_DIR": str(data_dir), **env}
    environment.pop("HELPDESK_DATABASE_URL", None)
    return subprocess.run(
        [HELPDESK, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd=data_dir,
        timeout=120,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    assert run(tmp_path, "content", "load").returncode == 0
    return tmp_path


def invite(data_dir: Path, *args: str) -> str:
    result = run(data_dir, "cfa", "invite", "--community", "dhading-gajuri-3", *args)
    assert result.returncode == 0, result.stderr
    match = re.search(r"start=([A-Z0-9]+)", result.stdout)
    assert match, result.stdout
    return match.group(1)


def test_new_user_walks_the_monthly_survey_in_nepali_and_sees_the_report(data_dir: Path) -> None:
    code = invite(data_dir, "--language", "ne", "--name", "Sita Tamang")
    answers = "\n".join(
        [
            "a",  # menu: monthly survey
            "b",  # water: irregular
            "१२",  # households, Devanagari digits
            "a",  # health post: yes
            "d",
            "j",  # problems: health, done
            "c",  # last meeting: skip (after the today / yesterday buttons)
            "a",  # location: skip
            "धारा तीन हप्तादेखि बन्द छ।",
            "a",  # review: send
        ]
    )

    chat = run(data_dir, "chat", "--cfa", code, stdin=answers + "\n")
    reports = run(data_dir, "reports", "list")
    cfas = run(data_dir, "cfa", "list")

    assert chat.returncode == 0, chat.stderr
    assert re.search(r"प्रश्न [1१]/[8८]", chat.stdout), chat.stdout
    reference = re.search(r"NP-\d{4}-\d{6}", chat.stdout)
    assert reference, chat.stdout[-2000:]
    assert reference.group(0) in reports.stdout and "received" in reports.stdout
    assert "Sita Tamang" in cfas.stdout and "terminal" in cfas.stdout


def test_content_check_names_the_file_and_key_of_a_mistake(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(PROJECT_ROOT / "content", content)
    survey = content / "surveys" / "monthly.yaml"
    survey.write_text(
        survey.read_text(encoding="utf-8").replace("type: yes_no", "type: yesno"), encoding="utf-8"
    )

    result = run(tmp_path, "content", "check", HELPDESK_CONTENT_DIR=str(content))

    assert result.returncode == 1
    assert "surveys/monthly.yaml" in result.stderr and "questions[2].type" in result.stderr


def test_invite_for_an_unknown_community_lists_the_known_ones(data_dir: Path) -> None:
    result = run(data_dir, "cfa", "invite", "--community", "nowhere", "--language", "ne")

    assert result.returncode == 1
    assert "no community 'nowhere'" in result.stderr and "dhading-gajuri-3" in result.stderr
