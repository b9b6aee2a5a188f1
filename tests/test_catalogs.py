"""The translation catalogs are complete and in step with the code.

Regenerate with the commands in the README's "Translations" section when this fails.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from core.config import PROJECT_ROOT
from core.i18n import translator

LOCALES = PROJECT_ROOT / "locales"
REQUIRED = ["en", "ne", "fr"]


def extracted_ids(tmp_path: Path) -> set[str]:
    template = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "-k",
            "ngettext:1,2",
            "--no-location",
            "-o",
            str(template),
            ".",
        ],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    return _ids(template)


def _ids(path: Path) -> set[str]:
    with path.open("rb") as source:
        catalog = read_po(source)
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def test_template_is_up_to_date_with_the_code(tmp_path: Path) -> None:
    in_code = extracted_ids(tmp_path)
    in_template = _ids(LOCALES / "messages.pot")

    assert in_code - in_template == set(), "texts in the code missing from messages.pot"
    assert in_template - in_code == set(), "texts in messages.pot no longer in the code"


@pytest.mark.parametrize("language", REQUIRED)
def test_catalog_has_every_text_translated_and_nothing_fuzzy(language: str) -> None:
    path = LOCALES / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=language)

    template = _ids(LOCALES / "messages.pot")
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    untranslated = [
        m.id
        for m in catalog
        if m.id and not all(m.string if isinstance(m.string, tuple) else [m.string])
    ]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]

    assert ids == template, f"{language} is not updated from messages.pot"
    assert untranslated == [] and fuzzy == [] and problems == []


def test_each_update_gets_its_own_language() -> None:
    nepali, french = translator("ne"), translator("fr")

    assert nepali.gettext("Skip") != french.gettext("Skip") != "Skip"
    assert translator("en").gettext("Skip") == "Skip"


def test_plural_forms_follow_the_language() -> None:
    french = translator("fr")

    one = french.ngettext(
        "Please choose at least %(count)s option.", "Please choose at least %(count)s options.", 1
    )
    two = french.ngettext(
        "Please choose at least %(count)s option.", "Please choose at least %(count)s options.", 2
    )
    assert one != two
