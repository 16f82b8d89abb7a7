"""64-bit hashes: of strings (blocking keys of names and streets), of PII digests, of key tuples.

Blocking keys are stored as one sorted uint64 column, so a key of several fields is folded into 64
bits with the splitmix64 finaliser (Steele, Lea & Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014), vectorised over numpy arrays. A collision only adds a wrong candidate,
which the comparisons then score as such.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
MISSING = 0  # the hash of an absent value; real hashes are never 0


def string_hash(text: str | None) -> int:
    """A stable 64-bit hash of a string (not Python's salted hash()), 0 for None."""
    if text is None:
        return MISSING
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    return value or 1


def digest_hash(digest: str | None) -> int:
    """64 bits of a keyed hex digest (streams.pii makes them uniform), else a hash of the string."""
    if not digest:
        return MISSING
    try:
        value = int(digest[:16], 16) if len(digest) >= 16 else string_hash(digest)
    except ValueError:
        value = string_hash(digest)
    return value or 1


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _finalise(x: U64) -> U64:
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    result: U64 = x ^ (x >> np.uint64(31))
    return result


def combine(tag: int, *parts: npt.NDArray[np.integer]) -> U64:
    """Fold a key's parts (equal-length integer arrays) and a per-kind tag into one uint64 each."""
    n = parts[0].shape[0]
    acc = np.full(n, tag, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for part in parts:
            acc = _finalise((acc + _GOLDEN) ^ part.astype(np.uint64, copy=False))
    return acc
