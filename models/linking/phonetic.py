"""American Soundex, used as a blocking key so that Smith, Smyth and Smithe land in one block.

Rules as published by the US National Archives (https://www.archives.gov/research/census/soundex):
keep the first letter; code the consonants; letters with the same code next to each other, or
separated only by h or w, count once (the first letter included); vowels and y separate them; pad
or cut to one letter and three digits.
"""

from __future__ import annotations

from functools import lru_cache

_CODES = {
    **dict.fromkeys("bfpv", "1"),
    **dict.fromkeys("cgjkqsxz", "2"),
    **dict.fromkeys("dt", "3"),
    "l": "4",
    **dict.fromkeys("mn", "5"),
    "r": "6",
}


@lru_cache(maxsize=65_536)
def soundex(name: str) -> str:
    """The four-character code of a (normalised, lower-case) name; "" when it has no letter."""
    letters = [c for c in name if "a" <= c <= "z"]
    if not letters:
        return ""
    out = [letters[0].upper()]
    last = _CODES.get(letters[0], "")
    for letter in letters[1:]:
        code = _CODES.get(letter, "")
        if code:
            if code != last:
                out.append(code)
            last = code
        elif letter not in "hw":  # a vowel (or y) separates two equal codes; h and w do not
            last = ""
    return ("".join(out) + "000")[:4]
