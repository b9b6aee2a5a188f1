"""Language names and codes as people and ID3 tags need them."""

import logging

from babel import Locale, UnknownLocaleError

logger = logging.getLogger(__name__)

# Babel names languages but has no ISO 639-2 table; these are the languages our
# stations air in, plus their neighbours. ID3's TLAN wants the terminological codes.
_ISO_639_2 = {
    "ak": "aka",
    "ar": "ara",
    "bm": "bam",
    "bn": "ben",
    "de": "deu",
    "dyu": "dyu",
    "ee": "ewe",
    "en": "eng",
    "es": "spa",
    "ff": "ful",
    "fr": "fra",
    "ha": "hau",
    "hi": "hin",
    "ig": "ibo",
    "mai": "mai",
    "mos": "mos",
    "ne": "nep",
    "new": "new",
    "pt": "por",
    "sw": "swa",
    "tw": "twi",
    "wo": "wol",
    "yo": "yor",
    "zh": "zho",
}


def base_language(code: str) -> str:
    """The primary subtag of a language tag: ``fr`` for ``fr-CA``, lower case."""
    return normalize_language(code).split("-", 1)[0]


def normalize_language(code: str) -> str:
    """A language tag in the form the engines are looked up by: lower case, ``-`` separated."""
    return code.strip().replace("_", "-").lower()


def language_name(code: str) -> str:
    """The English name of a language, such as ``Bambara`` for ``bm``.

    Returns the code itself when Babel does not know it, so a message still reads.
    """
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name("en")
    except (UnknownLocaleError, ValueError):
        return code
    return name or code


def iso639_2(code: str) -> str:
    """The three-letter ISO 639-2 code for an ID3 ``TLAN`` frame: ``nep`` for ``ne``.

    Returns ``und`` (undetermined, as ISO 639-2 defines it) for a language not in the table.
    """
    base = base_language(code)
    if base in _ISO_639_2:
        return _ISO_639_2[base]
    if len(base) == 3:
        return base

    logger.warning("no ISO 639-2 code for language %s; tagging it und", code)
    return "und"
