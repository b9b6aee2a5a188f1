"""Survey definitions: the schema of ``content/surveys/*.yaml`` and its loader.

A definition is checked completely when it is loaded; the first problem is raised as a
:class:`core.errors.ContentError` naming the file, the key (``questions[2].choices``)
and what was expected, so an editor can fix the file without reading code.
"""

import hashlib
import json
import logging
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import ContentError

logger = logging.getLogger(__name__)

# 24 characters at most: button payloads carry two slugs and Telegram allows 64 bytes.
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=24)]
Texts = dict[str, str]


class QuestionType(StrEnum):
    """What kind of answer a question takes."""

    TEXT = "text"
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    NUMBER = "number"
    DATE = "date"
    YES_NO = "yes_no"
    LOCATION = "location"
    PHOTO = "photo"
    VOICE = "voice"


CHOICE_TYPES = {QuestionType.SINGLE_CHOICE, QuestionType.MULTIPLE_CHOICE}
MEDIA_TYPES = {QuestionType.PHOTO, QuestionType.VOICE}

# Which validation rules make sense for which question type.
RULES_BY_TYPE: dict[QuestionType, set[str]] = {
    QuestionType.TEXT: {"min_length", "max_length"},
    QuestionType.NUMBER: {"min", "max", "integer"},
    QuestionType.DATE: {"not_future"},
    QuestionType.MULTIPLE_CHOICE: {"min_choices", "max_choices"},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Strict):
    """One option of a choice question; an ``exclusive`` one ("none") stands alone."""

    value: Slug
    label: Texts
    exclusive: bool = False


class Condition(_Strict):
    """Ask a question only if an earlier answer equals a value, or is one of several."""

    question: Slug
    equals: str | bool | int | None = None
    in_: list[str] | None = Field(default=None, alias="in")

    @model_validator(mode="after")
    def _one_test(self) -> "Condition":
        if (self.equals is None) == (self.in_ is None):
            raise ValueError("give exactly one of 'equals' or 'in'")
        return self

    def matches(self, answer: Any) -> bool:
        """Whether a stored answer satisfies the condition (a list matches by membership)."""
        wanted = [self.equals] if self.in_ is None else list(self.in_)
        given = answer if isinstance(answer, list) else [answer]
        return any(str(g).lower() == str(w).lower() for g in given for w in wanted)


class Validation(_Strict):
    """Limits on an answer; which ones apply depends on the question type."""

    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    min: float | None = None
    max: float | None = None
    integer: bool = False
    not_future: bool = False
    min_choices: int | None = Field(default=None, ge=0)
    max_choices: int | None = Field(default=None, ge=1)


class Question(_Strict):
    """One question of a survey."""

    id: Slug
    type: QuestionType
    label: Texts
    hint: Texts | None = None
    required: bool = True
    choices: list[Choice] | None = None
    ask_if: Condition | None = None
    validate_: Validation = Field(default_factory=Validation, alias="validate")

    @property
    def is_choice(self) -> bool:
        """Whether the question is answered by picking from ``choices``."""
        return self.type in CHOICE_TYPES

    def choice(self, value: str) -> Choice | None:
        """The choice with ``value``, if the question has it."""
        return next((c for c in self.choices or [] if c.value == value), None)


class Survey(_Strict):
    """A whole survey or report flow, as an editor wrote it."""

    id: Slug
    version: int = Field(ge=1)
    kind: Literal["survey", "report"]
    title: Texts
    intro: Texts | None = None
    category: Slug | None = None
    category_from: Slug | None = None
    location_from: Slug | None = None
    questions: list[Question] = Field(min_length=1)

    def question(self, question_id: str) -> Question:
        """The question with ``question_id``; raises KeyError if there is none."""
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(question_id)

    def index(self, question_id: str) -> int:
        """The position of a question in the file, from 0."""
        return [q.id for q in self.questions].index(question_id)


def load_survey(path: Path, languages: list[str], *, root: Path | None = None) -> Survey:
    """Load and check one survey file.

    Args:
        path: the YAML file.
        languages: the deployment's languages; every text must exist in each of them.
        root: the content folder, so errors name the file as the editor sees it.

    Returns:
        The survey.

    Raises:
        ContentError: the file cannot be read, is not YAML, or breaks the schema.
    """
    shown = str(path.relative_to(root)) if root else path.name
    data = _read_yaml(path, shown)

    try:
        survey = Survey.model_validate(data)
    except ValidationError as error:
        raise ContentError(shown, *_most_telling(error)) from error

    _check_semantics(survey, languages, shown)
    logger.debug("loaded survey %s v%d from %s", survey.id, survey.version, shown)
    return survey


def load_surveys(content_dir: Path, languages: list[str]) -> dict[str, Survey]:
    """Load every ``surveys/*.yaml`` under ``content_dir``, keyed by survey id.

    Raises:
        ContentError: a file is wrong, or two files share an id.
    """
    surveys: dict[str, Survey] = {}
    for path in sorted((content_dir / "surveys").glob("*.yaml")):
        survey = load_survey(path, languages, root=content_dir)
        if survey.id in surveys:
            raise ContentError(str(path.relative_to(content_dir)), "id", "used by another file")
        surveys[survey.id] = survey
    return surveys


def checksum(survey: Survey) -> str:
    """A stable digest of a definition, to tell one version from another."""
    canonical = json.dumps(survey.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _read_yaml(path: Path, shown: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ContentError(shown, "(file)", f"cannot be read: {error.strerror}") from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ContentError(shown, where, f"is not valid YAML: {error}") from error


def _most_telling(error: ValidationError) -> tuple[str, str]:
    # A misspelt key shows up twice: as an unknown key and as the missing real one. The
    # unknown key is what the editor typed, so it is the one to show.
    problems = error.errors()
    chosen = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
    return _key(chosen["loc"]), _explain(chosen)


def _key(location: tuple[int | str, ...]) -> str:
    key = ""
    for part in location:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key or "(top level)"


def _explain(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "is not a known key"
    if error["type"] == "missing":
        return "is required"
    return f"{error['msg']} (found {error.get('input')!r})"


def _check_semantics(survey: Survey, languages: list[str], shown: str) -> None:
    _check_texts(survey.title, languages, shown, "title")
    if survey.intro:
        _check_texts(survey.intro, languages, shown, "intro")

    seen: set[str] = set()
    for number, question in enumerate(survey.questions):
        key = f"questions[{number}]"
        if question.id in seen:
            raise ContentError(shown, f"{key}.id", f"'{question.id}' is used twice")
        _check_question(question, survey, seen, languages, shown, key)
        seen.add(question.id)

    _check_reference(survey, "category_from", {QuestionType.SINGLE_CHOICE}, shown)
    _check_reference(survey, "location_from", {QuestionType.LOCATION}, shown)
    if survey.kind == "report" and not (survey.category or survey.category_from):
        raise ContentError(shown, "category_from", "a report needs category or category_from")


def _check_question(
    question: Question,
    survey: Survey,
    earlier: set[str],
    languages: list[str],
    shown: str,
    key: str,
) -> None:
    _check_texts(question.label, languages, shown, f"{key}.label")
    if question.hint:
        _check_texts(question.hint, languages, shown, f"{key}.hint")

    if question.is_choice:
        _check_choices(question, languages, shown, key)
    elif question.choices is not None:
        raise ContentError(shown, f"{key}.choices", f"a {question.type} question has no choices")

    allowed = RULES_BY_TYPE.get(question.type, set())
    given = question.validate_.model_dump(exclude_defaults=True)
    for rule in given:
        if rule not in allowed:
            expected = ", ".join(sorted(allowed)) or "none"
            raise ContentError(
                shown, f"{key}.validate.{rule}", f"not for {question.type} (allowed: {expected})"
            )

    _check_limits(question, shown, key)

    if question.ask_if and question.ask_if.question not in earlier:
        raise ContentError(
            shown,
            f"{key}.ask_if.question",
            f"'{question.ask_if.question}' is not the id of an earlier question",
        )
    if question.ask_if:
        _check_condition_value(survey.question(question.ask_if.question), question, shown, key)


def _check_limits(question: Question, shown: str, key: str) -> None:
    # Limits that no answer can meet would hold a CFA at the question for ever.
    rules = question.validate_
    pairs = [
        ("min", rules.min, "max", rules.max),
        ("min_length", rules.min_length, "max_length", rules.max_length),
        ("min_choices", rules.min_choices, "max_choices", rules.max_choices),
    ]
    for low_name, low, high_name, high in pairs:
        if low is not None and high is not None and low > high:
            raise ContentError(
                shown,
                f"{key}.validate.{low_name}",
                f"{low} is more than {high_name} {high}: no answer could fit",
            )
    available = len(question.choices or [])
    if rules.min_choices is not None and rules.min_choices > available:
        raise ContentError(
            shown,
            f"{key}.validate.min_choices",
            f"{rules.min_choices} is more than the {available} choices",
        )


def _check_choices(question: Question, languages: list[str], shown: str, key: str) -> None:
    choices = question.choices or []
    if not 2 <= len(choices) <= 12:
        raise ContentError(shown, f"{key}.choices", f"expected 2 to 12 choices, {len(choices)}")
    values = [choice.value for choice in choices]
    if len(set(values)) != len(values):
        raise ContentError(shown, f"{key}.choices", "two choices share a value")
    for number, choice in enumerate(choices):
        _check_texts(choice.label, languages, shown, f"{key}.choices[{number}].label")


def _check_condition_value(earlier: Question, question: Question, shown: str, key: str) -> None:
    condition = question.ask_if
    assert condition is not None
    wanted = [condition.equals] if condition.in_ is None else condition.in_
    if earlier.is_choice:
        known = {choice.value for choice in earlier.choices or []}
        for value in wanted:
            if str(value) not in known:
                raise ContentError(
                    shown,
                    f"{key}.ask_if",
                    f"'{value}' is not a choice of '{earlier.id}' ({', '.join(sorted(known))})",
                )
    if earlier.type == QuestionType.YES_NO and not all(isinstance(v, bool) for v in wanted):
        raise ContentError(shown, f"{key}.ask_if", "a yes/no answer is compared to true or false")


def _check_reference(survey: Survey, field: str, types: set[QuestionType], shown: str) -> None:
    question_id = getattr(survey, field)
    if question_id is None:
        return
    try:
        question = survey.question(question_id)
    except KeyError:
        raise ContentError(shown, field, f"no question has id '{question_id}'") from None
    if question.type not in types:
        expected = " or ".join(sorted(types))
        raise ContentError(
            shown, field, f"'{question_id}' is {question.type}, expected {expected}"
        )


def _check_texts(texts: Texts, languages: list[str], shown: str, key: str) -> None:
    missing = [language for language in languages if not (texts.get(language) or "").strip()]
    if missing:
        raise ContentError(shown, key, f"missing text in {', '.join(missing)}")
    if any(not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]+)?", code) for code in texts):
        raise ContentError(shown, key, "language codes are like 'en', 'ne', 'fr'")
