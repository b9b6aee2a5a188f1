"""Survey definitions: the sample content loads, and every kind of mistake an editor can
make is reported with the file, the key and what was expected."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.surveys import Survey, checksum, load_survey, load_surveys
from core.config import PROJECT_ROOT
from core.errors import ContentError

LANGUAGES = ["ne", "en", "fr"]

BASE: dict[str, Any] = {
    "id": "ward_check",
    "version": 1,
    "kind": "survey",
    "title": {"en": "Ward check", "ne": "वडा जाँच", "fr": "Contrôle du quartier"},
    "questions": [
        {
            "id": "water",
            "type": "single_choice",
            "label": {"en": "Water supply?", "ne": "खानेपानी?", "fr": "Eau potable ?"},
            "choices": [
                {
                    "value": "regular",
                    "label": {"en": "Regular", "ne": "नियमित", "fr": "Régulière"},
                },
                {"value": "cut", "label": {"en": "Cut", "ne": "ठप्प", "fr": "Coupée"}},
            ],
        },
        {
            "id": "households",
            "type": "number",
            "label": {"en": "Households?", "ne": "घरधुरी?", "fr": "Ménages ?"},
            "validate": {"min": 0, "integer": True},
        },
        {
            "id": "notes",
            "type": "text",
            "required": False,
            "label": {"en": "Notes", "ne": "टिप्पणी", "fr": "Remarques"},
        },
    ],
}


def definition() -> dict[str, Any]:
    """A fresh copy of a valid definition, for a test to break."""
    return copy.deepcopy(BASE)


def write(tmp_path: Path, content: dict[str, Any] | str, name: str = "x.yaml") -> Path:
    """Write a definition (a mapping, or raw YAML text) under ``tmp_path / "surveys"``."""
    folder = tmp_path / "surveys"
    folder.mkdir(exist_ok=True)
    path = folder / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(content, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def load(tmp_path: Path, content: dict[str, Any] | str) -> Survey:
    return load_survey(write(tmp_path, content), LANGUAGES, root=tmp_path)


def refusal(tmp_path: Path, content: dict[str, Any] | str) -> ContentError:
    """The ContentError raised when loading ``content``, checked to name the file."""
    with pytest.raises(ContentError) as caught:
        load(tmp_path, content)
    assert caught.value.path == "surveys/x.yaml"
    return caught.value


def test_sample_surveys_load_with_the_deployment_languages() -> None:
    surveys = load_surveys(PROJECT_ROOT / "content", LANGUAGES)

    assert set(surveys) == {"monthly", "report"}
    assert surveys["report"].kind == "report"
    assert surveys["report"].category_from == "category"
    assert surveys["monthly"].question("migrants_abroad").ask_if is not None


def test_sample_survey_missing_a_deployment_language_is_refused() -> None:
    with pytest.raises(ContentError) as caught:
        load_surveys(PROJECT_ROOT / "content", [*LANGUAGES, "hi"])

    assert caught.value.path == "surveys/monthly.yaml"
    assert caught.value.key == "title"
    assert "hi" in caught.value.problem


def test_valid_definition_loads(tmp_path: Path) -> None:
    survey = load(tmp_path, definition())

    assert survey.id == "ward_check"
    assert [q.id for q in survey.questions] == ["water", "households", "notes"]
    assert survey.question("households").validate_.integer is True


def test_error_names_the_file_alone_when_no_root_is_given(tmp_path: Path) -> None:
    data = definition()
    del data["title"]["fr"]

    with pytest.raises(ContentError) as caught:
        load_survey(write(tmp_path, data), LANGUAGES)

    assert caught.value.path == "x.yaml"


def test_misspelt_key_is_reported_as_the_unknown_key(tmp_path: Path) -> None:
    data = definition()
    data["questions"][0]["lable"] = data["questions"][0].pop("label")

    error = refusal(tmp_path, data)

    assert error.key == "questions[0].lable"
    assert "not a known key" in error.problem


def test_unknown_key_is_named_with_its_path(tmp_path: Path) -> None:
    data = definition()
    data["questions"][0]["colour"] = "blue"

    error = refusal(tmp_path, data)

    assert error.key == "questions[0].colour"
    assert error.problem == "is not a known key"


def test_missing_french_label_names_the_label_and_the_language(tmp_path: Path) -> None:
    data = definition()
    del data["questions"][1]["label"]["fr"]

    error = refusal(tmp_path, data)

    assert error.key == "questions[1].label"
    assert "fr" in error.problem
    assert "ne" not in error.problem


def test_blank_label_counts_as_missing(tmp_path: Path) -> None:
    data = definition()
    data["questions"][1]["label"]["ne"] = "   "

    error = refusal(tmp_path, data)

    assert error.key == "questions[1].label"
    assert "ne" in error.problem


def test_missing_choice_label_names_the_choice(tmp_path: Path) -> None:
    data = definition()
    del data["questions"][0]["choices"][1]["label"]["ne"]

    error = refusal(tmp_path, data)

    assert error.key == "questions[0].choices[1].label"
    assert "ne" in error.problem


def test_unknown_question_type_lists_the_known_types(tmp_path: Path) -> None:
    data = definition()
    data["questions"][2]["type"] = "free_text"

    error = refusal(tmp_path, data)

    assert error.key == "questions[2].type"
    assert "free_text" in error.problem
    assert "'text'" in error.problem and "'single_choice'" in error.problem


def test_choice_question_without_choices_is_refused(tmp_path: Path) -> None:
    data = definition()
    del data["questions"][0]["choices"]

    error = refusal(tmp_path, data)

    assert error.key == "questions[0].choices"
    assert "2 to 12" in error.problem


def test_choice_question_with_one_choice_is_refused(tmp_path: Path) -> None:
    data = definition()
    data["questions"][0]["choices"] = data["questions"][0]["choices"][:1]

    error = refusal(tmp_path, data)

    assert error.key == "questions[0].choices"
    assert "2 to 12" in error.problem and "1" in error.problem


def test_duplicate_question_id_is_refused(tmp_path: Path) -> None:
    data = definition()
    data["questions"][2]["id"] = "water"

    error = refusal(tmp_path, data)

    assert error.key == "questions[2].id"
    assert "'water'" in error.problem and "twice" in error.problem


def test_ask_if_pointing_to_a_later_question_is_refused(tmp_path: Path) -> None:
    data = definition()
    data["questions"][1]["ask_if"] = {"question": "notes", "equals": "x"}

    error = refusal(tmp_path, data)

    assert error.key == "questions[1].ask_if.question"
    assert "'notes'" in error.problem and "earlier" in error.problem


def test_ask_if_pointing_to_an_unknown_question_is_refused(tmp_path: Path) -> None:
    data = definition()
    data["questions"][1]["ask_if"] = {"question": "rainfall", "equals": "x"}

    error = refusal(tmp_path, data)

    assert error.key == "questions[1].ask_if.question"
    assert "'rainfall'" in error.problem


def test_ask_if_pointing_to_an_earlier_question_loads(tmp_path: Path) -> None:
    data = definition()
    data["questions"][1]["ask_if"] = {"question": "water", "in": ["cut"]}

    survey = load(tmp_path, data)

    condition = survey.question("households").ask_if
    assert condition is not None and condition.matches("cut") and not condition.matches("regular")


@pytest.mark.parametrize("test", [{"equals": "flooded"}, {"in": ["cut", "flooded"]}])
def test_ask_if_value_that_is_not_a_choice_is_refused(
    tmp_path: Path, test: dict[str, Any]
) -> None:
    data = definition()
    data["questions"][1]["ask_if"] = {"question": "water", **test}

    error = refusal(tmp_path, data)

    assert error.key == "questions[1].ask_if"
    assert "'flooded'" in error.problem
    assert "cut, regular" in error.problem


def test_validation_rule_not_for_the_type_is_refused(tmp_path: Path) -> None:
    data = definition()
    data["questions"][1]["validate"] = {"min_length": 3}

    error = refusal(tmp_path, data)

    assert error.key == "questions[1].validate.min_length"
    assert "number" in error.problem
    assert "integer, max, min" in error.problem


def test_category_from_naming_a_non_choice_question_is_refused(tmp_path: Path) -> None:
    data = definition()
    data["kind"] = "report"
    data["category_from"] = "notes"

    error = refusal(tmp_path, data)

    assert error.key == "category_from"
    assert "'notes' is text" in error.problem and "single_choice" in error.problem


def test_category_from_naming_a_single_choice_question_loads(tmp_path: Path) -> None:
    data = definition()
    data["kind"] = "report"
    data["category_from"] = "water"

    assert load(tmp_path, data).category_from == "water"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    text = "id: x\nversion: 1\nkind: survey\nquestions:\n\t- id: a\n"

    error = refusal(tmp_path, text)

    assert error.key == "line 5"
    assert "not valid YAML" in error.problem


def test_slug_of_24_characters_is_accepted(tmp_path: Path) -> None:
    data = definition()
    data["id"] = "s" * 24

    assert load(tmp_path, data).id == "s" * 24


def test_slug_longer_than_24_characters_is_refused(tmp_path: Path) -> None:
    data = definition()
    data["questions"][0]["id"] = "q" * 25

    error = refusal(tmp_path, data)

    assert error.key == "questions[0].id"
    assert "24" in error.problem


def test_two_files_sharing_an_id_are_refused(tmp_path: Path) -> None:
    write(tmp_path, definition(), "a.yaml")
    write(tmp_path, definition(), "b.yaml")

    with pytest.raises(ContentError) as caught:
        load_surveys(tmp_path, LANGUAGES)

    assert caught.value.path == "surveys/b.yaml"
    assert caught.value.key == "id"
    assert "another file" in caught.value.problem


def test_checksum_is_stable_for_the_same_content(tmp_path: Path) -> None:
    first = load(tmp_path, definition())
    again = load(tmp_path, definition())
    data = definition()
    reordered = {key: data[key] for key in reversed(list(data))}
    path = write(tmp_path, "# the same survey, keys in another order\n", "y.yaml")
    path.write_text(
        path.read_text("utf-8") + yaml.safe_dump(reordered, allow_unicode=True, sort_keys=False),
        "utf-8",
    )
    rewritten = load_survey(path, LANGUAGES, root=tmp_path)

    assert checksum(first) == checksum(again) == checksum(rewritten)


def test_checksum_changes_when_a_label_changes(tmp_path: Path) -> None:
    before = load(tmp_path, definition())
    data = definition()
    data["questions"][2]["label"]["fr"] = "Autres remarques"
    after = load(tmp_path, data)

    assert checksum(before) != checksum(after)
