"""Error messages a station engineer or an editor can act on."""

from audio.errors import EngineError, NoVoiceError
from audio.languages import iso639_2, language_name


def test_no_voice_names_the_language_the_engines_and_what_to_do() -> None:
    error = NoVoiceError("bm", ["espeak", "gtts"])

    assert str(error) == (
        "No text-to-speech engine speaks Bambara (bm) here (tried: espeak, gtts). "
        "Record this bulletin in Bambara instead."
    )
    assert error.language == "bm"
    assert error.tried == ["espeak", "gtts"]


def test_engine_error_carries_engine_language_and_reason() -> None:
    error = EngineError("gtts", "ne", "HTTP 429 from Google after 3 attempts")

    assert (error.engine, error.language) == ("gtts", "ne")
    assert "429" in str(error)


def test_language_names_and_id3_codes() -> None:
    assert language_name("ne") == "Nepali"
    assert language_name("zz-unknown") == "zz-unknown"
    assert [iso639_2(code) for code in ("ne", "fr", "en", "bm", "fr-CA")] == [
        "nep",
        "fra",
        "eng",
        "bam",
        "fra",
    ]
    assert iso639_2("xx") == "und"
