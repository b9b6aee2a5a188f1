"""Saving photos and voice notes that CFAs send into the media folder."""

import hashlib
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bot.messages import MediaFile

logger = logging.getLogger(__name__)

SUFFIXES = {"image/jpeg": ".jpg", "image/png": ".png", "audio/ogg": ".ogg", "audio/mpeg": ".mp3"}


def save_media(
    media_dir: Path, content: bytes, mime_type: str, source_id: str | None
) -> MediaFile:
    """Write ``content`` under ``media_dir/incoming/YYYY/MM/`` and describe it.

    The file is written to a temporary name and renamed, so a crash never leaves a
    half-written file under a name a report points to.

    Returns:
        The stored file, with its path relative to ``media_dir``.
    """
    now = datetime.now(UTC)
    relative = Path("incoming") / f"{now:%Y}" / f"{now:%m}"
    relative /= f"{uuid.uuid4().hex}{SUFFIXES.get(mime_type, '.bin')}"
    target = media_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)

    partial = target.with_suffix(target.suffix + ".part")
    partial.write_bytes(content)
    os.replace(partial, target)

    logger.info("saved %s (%d bytes, %s) from %s", relative, len(content), mime_type, source_id)
    return MediaFile(
        path=relative.as_posix(),
        mime_type=mime_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        source_id=source_id,
    )
