"""The online learner's full state as bytes, for checkpoints: weights, averages, AdaGrad sums, counters.

Unlike an artifact (what scores), a checkpoint lets a restarted worker carry on learning exactly
where it stopped. The bytes are an uncompressed `.npz` (a zip of `.npy` arrays) read back with
`allow_pickle=False`: `meta` is UTF-8 JSON (format, spec fingerprint, settings, scalars) held as
a uint8 array, and the per-coordinate arrays cover only the active columns, so a checkpoint is
a few hundred kilobytes, not 2**hash_bits floats. Decoding checks the member list, that nothing
is compressed (so sizes are bounded by the input), dtypes, shapes, finiteness, and that the
state belongs to the expected feature spec.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.scoring.linear import FloatArray

STATE_FORMAT = "groundswell.online-state"
STATE_VERSION = 1
MAX_STATE_BYTES = 256 << 20
_ARRAYS = ("active", "w", "avg_w", "acc")
_MEMBERS = {f"{name}.npy" for name in ("meta", *_ARRAYS)}


class StateError(ValueError):
    """A checkpoint that cannot be restored; the message says why."""


@dataclass(frozen=True)
class LearnerState:
    spec_fingerprint: str
    settings: dict[str, Any]
    active: npt.NDArray[np.int64]  # columns some row has touched
    w: FloatArray  # iterate, average and AdaGrad sums on those columns
    avg_w: FloatArray
    acc: FloatArray
    b: float
    avg_b: float
    acc_b: float
    n_labels: int
    n_batches: int

    def encode(self) -> bytes:
        meta = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "spec_fingerprint": self.spec_fingerprint,
            "settings": self.settings,
            "b": self.b,
            "avg_b": self.avg_b,
            "acc_b": self.acc_b,
            "n_labels": self.n_labels,
            "n_batches": self.n_batches,
        }
        buffer = io.BytesIO()
        np.savez(
            buffer,
            meta=np.frombuffer(json.dumps(meta, allow_nan=False).encode(), dtype=np.uint8),
            active=self.active.astype(np.int64),
            w=self.w.astype(np.float64),
            avg_w=self.avg_w.astype(np.float64),
            acc=self.acc.astype(np.float64),
        )
        return buffer.getvalue()


def decode_state(data: bytes, spec_fingerprint: str, n_features: int) -> LearnerState:
    if len(data) > MAX_STATE_BYTES:
        raise StateError(f"checkpoint of {len(data)} bytes exceeds {MAX_STATE_BYTES}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise StateError(f"checkpoint is not an npz archive: {exc}") from exc
    if {i.filename for i in infos} != _MEMBERS or len(infos) != len(_MEMBERS):
        raise StateError(f"checkpoint members {sorted(i.filename for i in infos)}; expected {sorted(_MEMBERS)}")
    if any(i.compress_type != zipfile.ZIP_STORED for i in infos):
        raise StateError("checkpoint members must be stored uncompressed")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ("meta", *_ARRAYS)}
    except (ValueError, OSError, EOFError) as exc:
        raise StateError(f"checkpoint arrays cannot be read: {exc}") from exc
    meta = _meta(arrays["meta"])
    if meta.get("format") != STATE_FORMAT or meta.get("version") != STATE_VERSION:
        raise StateError(f"not a {STATE_FORMAT} v{STATE_VERSION} checkpoint")
    if meta.get("spec_fingerprint") != spec_fingerprint:
        raise StateError("checkpoint was written for another feature spec")
    active = arrays["active"]
    if active.dtype != np.int64 or active.ndim != 1:
        raise StateError("active columns must be a 1-D int64 array")
    if active.size and (active.min() < 0 or active.max() >= n_features or np.unique(active).size != active.size):
        raise StateError("active columns out of range or repeated")
    for name in ("w", "avg_w", "acc"):
        values = arrays[name]
        if values.dtype != np.float64 or values.shape != active.shape or not np.all(np.isfinite(values)):
            raise StateError(f"{name} must be finite float64 values, one per active column")
    if np.any(arrays["acc"] <= 0):
        raise StateError("AdaGrad sums must be positive")
    scalars: dict[str, Any] = {k: meta.get(k) for k in ("b", "avg_b", "acc_b", "n_labels", "n_batches")}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in scalars.values()):
        raise StateError("checkpoint scalars must be finite numbers")
    if not isinstance(meta.get("settings"), dict):
        raise StateError("checkpoint settings must be an object")
    return LearnerState(
        spec_fingerprint, meta["settings"], active, arrays["w"], arrays["avg_w"], arrays["acc"],
        float(scalars["b"]), float(scalars["avg_b"]), float(scalars["acc_b"]),
        int(scalars["n_labels"]), int(scalars["n_batches"]),
    )  # fmt: skip


def _meta(raw: npt.NDArray[Any]) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise StateError("checkpoint meta must be UTF-8 bytes")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise StateError(f"checkpoint meta is not JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise StateError("checkpoint meta must be a JSON object")
    return meta
