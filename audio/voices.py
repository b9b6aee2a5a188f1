"""Choosing who speaks each text: a recording first, then the configured engines in order.

A text is only ever given to an engine that claims its language. When none can speak it,
:class:`NoVoiceError` tells the editor to record it, rather than letting a French voice
mangle a Bambara bulletin.
"""

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from audio.engines.base import Speech, TtsEngine, speech_key
from audio.engines.espeak import EspeakEngine
from audio.engines.gtts import GttsEngine
from audio.engines.recorded import RecordedEngine
from audio.errors import AudioError, EngineError, NoVoiceError
from audio.languages import base_language, normalize_language
from core.config import Settings

logger = logging.getLogger(__name__)


class Voices:
    """The engines of this deployment, tried per language as the settings order them.

    Args:
        settings: ``tts_order``, ``tts_default_order``, the espeak binary and gTTS options.
        recordings: language → a recorded bulletin; it always comes before any engine.

    Raises:
        AudioError: when a setting names an engine that does not exist.
    """

    def __init__(self, settings: Settings, recordings: Mapping[str, Path] | None = None) -> None:
        self.settings = settings
        self.recorded = RecordedEngine(recordings or {})
        self.engines: dict[str, TtsEngine] = {
            "espeak": EspeakEngine(settings.espeak_binary),
            "gtts": GttsEngine(
                settings.resolved_tts_cache_dir,
                attempts=settings.gtts_attempts,
                backoff_s=settings.gtts_backoff_s,
            ),
            self.recorded.name: self.recorded,
        }

        self._check_names()

    def order(self, language: str) -> list[TtsEngine]:
        """The engines to try for ``language``: its recording, then the configured order."""
        language = normalize_language(language)
        names = self.settings.engine_order(language)
        if language not in self.settings.tts_order and base_language(language) != language:
            names = self.settings.engine_order(base_language(language))

        chosen: list[TtsEngine] = []
        if language in self.recorded.languages():
            chosen.append(self.recorded)
        for name in names:
            if self.engines[name] not in chosen:
                chosen.append(self.engines[name])
        return chosen

    async def speak(self, text: str, language: str, workdir: Path) -> Speech:
        """Speak ``text`` with the first engine, in order, that speaks ``language`` and succeeds.

        Returns:
            the speech, whose ``engine`` names who spoke it.

        Raises:
            NoVoiceError: when no engine speaks the language here, or all that do failed.
        """
        language = normalize_language(language)
        key = speech_key("", language, text)[:10]
        tried: list[str] = []
        for engine in self.order(language):
            tried.append(engine.name)
            code = _spoken_as(engine, language)
            if code is None:
                logger.debug("segment %s: %s has no %s voice", key, engine.name, language)
                continue

            speech = await self._try(engine, text, code, workdir, key)
            if speech is not None:
                return Speech(speech.path, speech.engine, language)

        raise NoVoiceError(language, tried)

    def available(self) -> dict[str, list[str]]:
        """Language → the engines that would speak it here, in the order they are tried.

        A language appears when some configured engine or a recording speaks it; gTTS is
        listed from its offline table, so it also needs the internet to work.
        """
        candidates = set(self.recorded.languages()) | set(self.settings.tts_order)
        for name in {*self.settings.tts_default_order, *_flat(self.settings.tts_order)}:
            candidates |= self.engines[name].languages()

        found: dict[str, list[str]] = {}
        for language in sorted(candidates):
            names = [e.name for e in self.order(language) if _spoken_as(e, language)]
            if names:
                found[language] = names
        return found

    async def _try(
        self, engine: TtsEngine, text: str, code: str, workdir: Path, key: str
    ) -> Speech | None:
        started = time.monotonic()
        try:
            speech = await engine.synthesize(text, code, workdir)
        except EngineError as error:
            logger.warning("segment %s (%s): %s failed: %s", key, code, engine.name, error.reason)
            return None

        elapsed = time.monotonic() - started
        logger.info(
            "segment %s (%s, %d chars) spoken by %s in %.2f s",
            key,
            code,
            len(text),
            engine.name,
            elapsed,
        )
        return speech

    def _check_names(self) -> None:
        settings = {"HELPDESK_TTS_DEFAULT_ORDER": {"*": self.settings.tts_default_order}}
        settings["HELPDESK_TTS_ORDER"] = self.settings.tts_order
        known = ", ".join(sorted(self.engines))
        for setting, orders in settings.items():
            for language, names in orders.items():
                for name in names:
                    if name not in self.engines:
                        raise AudioError(
                            f"{setting}: unknown text-to-speech engine {name!r} for {language!r};"
                            f" known engines: {known}"
                        )


def _spoken_as(engine: TtsEngine, language: str) -> str | None:
    # A regional tag (fr-ca) falls back to its base language (fr): the same language,
    # never a different one.
    languages = engine.languages()
    if language in languages:
        return language
    base = base_language(language)
    return base if base in languages else None


def _flat(orders: Mapping[str, list[str]]) -> set[str]:
    return {name for names in orders.values() for name in names}
