"""Normal forms of the person fields used for linking: given and family names, zip5, birth year.

Names are folded to lower-case ASCII letters (accents dropped: "José" → "jose"), punctuation goes
(apostrophes and periods join: "O'Brien" → "obrien"; hyphens and commas separate), titles and
generational suffixes are removed ("Dr. Robert Smith Jr." → "robert", "smith"). A given name keeps
one token: the first, unless that is a lone initial followed by a fuller name ("J. Robert" →
"robert", people who go by their middle name). A family name keeps all its tokens, space-separated
("Garcia-Lopez" → "garcia lopez"), so the comparison can see a shared part of a double surname.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_NOT_LETTER = re.compile(r"[^a-z ]+")
_JOINERS = re.compile("['\u2019`.]")  # vanish inside a name: O'Brien, O\u2019Brien, St.John
_SEPARATORS = re.compile(r"[-_,/&()\"]+")

_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "fr", "sr", "sra", "srta", "hon"})
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "v", "2nd", "3rd", "md", "phd", "esq", "dds", "rn"})

MIN_BIRTH_YEAR = 1900
MAX_BIRTH_YEAR = 2030


def fold(text: str) -> str:
    """Lower-case ASCII: accents dropped by Unicode decomposition, other non-ASCII letters removed."""
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii").lower()


def _tokens(raw: str) -> list[str]:
    text = _SEPARATORS.sub(" ", _JOINERS.sub("", fold(raw)))
    return _NOT_LETTER.sub(" ", text).split()


@lru_cache(maxsize=16_384)
def given_name(raw: str | None) -> str | None:
    """The normal form of a given name, or None when nothing usable is left."""
    if not raw:
        return None
    words = [w for w in _tokens(raw) if w not in _TITLES and w not in _SUFFIXES]
    if not words:
        return None
    if len(words[0]) == 1 and len(words) > 1 and len(words[1]) > 1:
        return words[1]
    return words[0]


@lru_cache(maxsize=16_384)
def family_name(raw: str | None) -> str | None:
    """The normal form of a family name (tokens space-separated), or None when nothing is left."""
    if not raw:
        return None
    words = _tokens(raw)
    while len(words) > 1 and words[-1] in _SUFFIXES:
        words.pop()
    return " ".join(words) or None


def zip5(raw: str | int | None) -> str | None:
    """Five digits: ZIP+4 is cut, a ZIP that lost its leading zero in a spreadsheet is padded."""
    if raw is None:
        return None
    text = str(raw).strip()
    head = text.split("-", 1)[0].strip()
    if not head.isdigit():
        return None
    if len(head) == 9:  # ZIP+4 without the hyphen
        head = head[:5]
    if 3 <= len(head) <= 5:
        head = head.zfill(5)
        return None if head == "00000" else head
    return None


def birth_year(raw: int | str | None) -> int | None:
    """A plausible four-digit birth year, else None."""
    if raw is None:
        return None
    try:
        year = int(raw)
    except (TypeError, ValueError):
        return None
    return year if MIN_BIRTH_YEAR <= year <= MAX_BIRTH_YEAR else None
