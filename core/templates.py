"""Bulletin script templates, one file per language under ``content/bulletins/``.

Each template part is a text with ``{placeholders}``; the loader refuses a placeholder
that the part cannot be given, so a typo in a template is found by
``helpdesk content check`` and not on air.
"""

import string
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import ContentError

SCRIPT_FIELDS = {"station", "programme", "date", "weekday", "count"}
# What each part must say: a report item without its summary would air only a place name.
REQUIRED: dict[str, set[str]] = {
    "report": {"summary"},
    "resolved_issue": {"summary"},
    "announcement": {"text"},
}
PLACEHOLDERS: dict[str, set[str]] = {
    "intro": SCRIPT_FIELDS,
    "outro": SCRIPT_FIELDS,
    "nothing_new": SCRIPT_FIELDS,
    "report": {"community", "district", "category", "summary"},
    "resolved_issue": {"community", "district", "summary"},
    "announcement": {"text"},
}


class BulletinTemplate(BaseModel):
    """The parts of a bulletin in one language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intro: str
    report: str
    resolved_issue: str
    announcement: str
    nothing_new: str
    outro: str
    categories: dict[str, str] = {}

    def fill(self, part: str, **values: Any) -> str:
        """One part with its placeholders filled."""
        text: str = getattr(self, part)
        return " ".join(text.format_map(values).split())


def load_template(content_dir: Any, language: str) -> BulletinTemplate:
    """Read and check ``bulletins/<language>.yaml``.

    Raises:
        ContentError: the file is missing, not YAML, lacks a part or uses a placeholder
            the part cannot be given.
    """
    shown = f"bulletins/{language}.yaml"
    path = content_dir / "bulletins" / f"{language}.yaml"
    if not path.exists():
        raise ContentError(shown, "(file)", f"missing: a station broadcasts in '{language}'")
    try:
        template = BulletinTemplate.model_validate(yaml.safe_load(path.read_text("utf-8")))
    except yaml.YAMLError as error:
        raise ContentError(shown, "(file)", f"is not valid YAML: {error}") from error
    except ValidationError as error:
        first = error.errors()[0]
        raise ContentError(shown, ".".join(map(str, first["loc"])), first["msg"]) from error

    for part, allowed in PLACEHOLDERS.items():
        used = _placeholders(getattr(template, part), shown, part)
        unknown = sorted(used - allowed)
        missing = sorted(REQUIRED.get(part, set()) - used)
        if unknown:
            raise ContentError(
                shown,
                part,
                f"unknown placeholder {{{unknown[0]}}}; "
                f"this part can use {', '.join(sorted(allowed))}",
            )
        if missing:
            raise ContentError(shown, part, f"must contain {{{missing[0]}}}")
    return template


def _placeholders(text: str, shown: str, part: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as error:
        raise ContentError(shown, part, f"has a stray brace: {error}") from error
