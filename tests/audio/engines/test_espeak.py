"""eSpeak NG, for real: its voices, and Nepali, French and English spoken to WAV."""

from pathlib import Path

import pytest

from audio.engines.espeak import EspeakEngine, parse_voices
from audio.errors import EngineError
from audio.ffmpeg import duration_by_decoding

LISTING = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  en-029          --/M      English_(Caribbean) gmw/en-029           (en 10)
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 5  en-gb-x-rp      --/M      English_(Received_Pronunciation) gmw/en-GB-x-rp       (en-gb 4)(en 5)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  fr-be           --/M      French_(Belgium)   roa/fr-BE            (fr 8)
 5  fr-fr           --/M      French_(France)    roa/fr               (fr 5)
 5  ne              --/M      Nepali             inc/ne
 5  vi-vn-x-south   --/M      Vietnamese_(Southern) aav/vi-VN-x-south
"""

TEXTS = {
    "ne": "नमस्ते। आजको समाचार सुन्नुहोस्।",
    "fr": "Bonjour, voici les nouvelles.",
    "en": "Hello, here is the news.",
}


def test_each_language_gets_its_preferred_voice() -> None:
    voices = parse_voices(LISTING)

    assert voices["en"] == "en-gb"
    assert voices["fr"] == "fr-fr"
    assert voices["ne"] == "ne"
    assert voices["en-us"] == "en-us"
    # A regional voice still gives its base language when nothing else does.
    assert voices["vi"] == "vi-vn-x-south"
    assert "bm" not in voices


def test_the_installed_espeak_speaks_our_languages_and_not_bambara() -> None:
    languages = EspeakEngine().languages()

    assert {"ne", "fr", "en"} <= languages
    assert "bm" not in languages


@pytest.mark.parametrize("language", ["ne", "fr", "en"])
async def test_espeak_speaks_to_a_wav_that_decodes(language: str, workdir: Path) -> None:
    speech = await EspeakEngine().synthesize(TEXTS[language], language, workdir)

    assert speech.path.suffix == ".wav"
    assert (speech.engine, speech.language) == ("espeak", language)
    # A few words take over a second; Devanagari lost on the way would give near silence.
    assert duration_by_decoding(speech.path) > 1.0


async def test_the_same_text_is_spoken_once_per_workdir(workdir: Path) -> None:
    engine = EspeakEngine()
    first = await engine.synthesize(TEXTS["en"], "en", workdir)
    stamp = first.path.stat().st_mtime_ns

    second = await engine.synthesize(TEXTS["en"], "en", workdir)

    assert second.path == first.path
    assert second.path.stat().st_mtime_ns == stamp


async def test_a_language_without_a_voice_is_refused(workdir: Path) -> None:
    with pytest.raises(EngineError, match="no eSpeak NG voice"):
        await EspeakEngine().synthesize("I ni ce", "bm", workdir)


async def test_a_missing_binary_speaks_nothing(workdir: Path) -> None:
    engine = EspeakEngine("/nonexistent/espeak-ng")

    assert engine.languages() == set()
    with pytest.raises(EngineError):
        await engine.synthesize("Hello", "en", workdir)
