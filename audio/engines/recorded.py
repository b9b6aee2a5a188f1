"""A person's recording, for languages no engine speaks (or speaks well enough)."""

import logging
from collections.abc import Mapping
from pathlib import Path

from audio.engines.base import Speech, TtsEngine
from audio.errors import EngineError
from audio.languages import normalize_language

logger = logging.getLogger(__name__)


class RecordedEngine(TtsEngine):
    """Returns the recording made for a language, whatever the text.

    The recording is the bulletin read by a person (a voice note, a studio WAV), so the
    text only documents what was said.

    Args:
        recordings: language tag → audio file in any format ffmpeg decodes.
    """

    name = "recorded"

    def __init__(self, recordings: Mapping[str, Path]) -> None:
        self.recordings = {normalize_language(code): path for code, path in recordings.items()}

    def languages(self) -> set[str]:
        """The languages a recording was given for."""
        return set(self.recordings)

    async def synthesize(self, text: str, language: str, workdir: Path) -> Speech:
        """The recording for ``language``; ``text`` and ``workdir`` are not used.

        Raises:
            EngineError: when no recording was given for the language or its file is gone.
        """
        path = self.recordings.get(language)
        if path is None:
            raise EngineError(self.name, language, "no recording for this language")
        if not path.is_file():
            raise EngineError(self.name, language, f"recording {path} does not exist")

        logger.debug("recorded %s: %s", language, path)
        return Speech(path, self.name, language)
