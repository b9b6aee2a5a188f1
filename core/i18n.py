"""Bot texts in the CFA's language, from the gettext catalogs under ``locales/``.

The ``.po`` files are the source; they are compiled in memory when first used, so a
stale compiled catalog can never be served. Each update picks its own
:class:`Translator`: there is no process-wide "current language".
"""

import gettext
import io
import logging
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from core.config import get_settings

logger = logging.getLogger(__name__)

DOMAIN = "messages"


class Translator:
    """The texts of one language: ``t.gettext(...)`` and ``t.ngettext(...)``.

    Args:
        language: a code such as ``ne``; a language without a catalog falls back to the
            English msgids.
    """

    def __init__(self, language: str, translations: gettext.NullTranslations) -> None:
        self.language = language
        self.locale = _locale(language)
        self._translations = translations

    def gettext(self, message: str) -> str:
        """The translation of ``message``."""
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        """The translation of a message that depends on a number, with the right plural."""
        return self._translations.ngettext(singular, plural, count)


def translator(language: str, locales_dir: Path | None = None) -> Translator:
    """The :class:`Translator` for ``language``, cached per process."""
    return _cached_translator(language, locales_dir or get_settings().locales_dir)


def catalog_languages(locales_dir: Path | None = None) -> list[str]:
    """The languages that have a catalog, sorted."""
    folder = locales_dir or get_settings().locales_dir
    return sorted(p.parent.parent.name for p in folder.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def language_name(language: str) -> str:
    """A language's own name for itself (``नेपाली`` for ``ne``), for the language menu."""
    try:
        locale = Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return language
    name = locale.get_display_name(locale) or language
    return name[:1].upper() + name[1:]


def negotiate(wanted: str | None, available: list[str], default: str) -> str:
    """Pick the language to answer in from what a client reports (``ne``, ``fr-CA``)."""
    if wanted:
        base = wanted.replace("_", "-").split("-")[0].lower()
        if base in available:
            return base
    return default


@lru_cache(maxsize=32)
def _cached_translator(language: str, locales_dir: Path) -> Translator:
    path = locales_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        logger.debug("no catalog for %s at %s; using the English texts", language, path)
        return Translator(language, gettext.NullTranslations())

    with path.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    logger.debug("compiled catalog %s (%d messages)", path, len(catalog))
    return Translator(language, Translations(compiled, domain=DOMAIN))


def _locale(language: str) -> Locale:
    try:
        return Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")
