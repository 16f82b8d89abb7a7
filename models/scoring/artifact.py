"""Model artifacts: data only (a JSON manifest and a float64 array in a zip), never code.

An artifact file is a zip with exactly two members:

- `manifest.json`: format and format_version, the FeatureSpec, the intercept, a description of
  the coefficients (dtype "<f8", shape [2**hash_bits], sha256 of their little-endian bytes),
  a free-form `training` object (data, algorithm, hyper-parameters) and `metrics` (numbers).
- `coefficients.npy`: the coefficients, read with `allow_pickle=False` after checking its header.

The version id is the sha256 of the manifest in canonical JSON (sorted keys, no spaces). The
manifest holds the coefficients' own sha256, so the id covers every byte that affects a score,
and the same model written twice (or by another tool) gets the same id: zip timestamps and
compression levels do not matter.

`load_artifact` treats its input as hostile. It refuses, with an `ArtifactError` whose `code`
names the reason: files over a size limit (checked before reading), pickles and joblib files
(sniffed by their headers, at the top level or as a member), skops files (this loader has no
allow-list for them, so it takes none), anything that is not a zip, encrypted, duplicate, unknown
or missing members, members whose declared or actual uncompressed size exceeds its limit (zip
bombs: reads stop at the limit), a coefficients header with a dtype other than little-endian
float64 or the wrong shape, NaN or infinite numbers anywhere, a manifest that does not parse or
has unknown keys, and a coefficients hash that differs from the manifest's (tampering).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from models.scoring.features import MAX_HASH_BITS, FeatureSpec, FeatureSpecError, HashedFeatures
from models.scoring.linear import FloatArray, LinearScorer, probabilities

ARTIFACT_FORMAT = "groundswell.linear-logistic"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
COEFFICIENTS_NAME = "coefficients.npy"
COEFFICIENT_DTYPE = np.dtype("<f8")
DEFAULT_MAX_BYTES = 64 << 20
MAX_MANIFEST_BYTES = 1 << 20
MAX_NPY_HEADER_BYTES = 4096
MAX_COEFFICIENT_BYTES = COEFFICIENT_DTYPE.itemsize * (1 << MAX_HASH_BITS) + MAX_NPY_HEADER_BYTES
_MANIFEST_KEYS = {"format", "format_version", "feature_spec", "intercept", "coefficients", "training", "metrics"}
# Leading bytes of compressed streams joblib (and others) wrap pickles in: zlib, gzip, bz2, xz, lzma, lz4.
_COMPRESSED_MAGIC = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda", b"\x1f\x8b", b"BZh", b"\xfd7zXZ",
                     b"\x5d\x00\x00", b"\x04\x22\x4d\x18", b"ZF")  # fmt: skip
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pck", ".dill", ".sav")


class ArtifactError(ValueError):
    """An artifact was refused; `code` is a stable reason key, the message explains it to a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True).encode()


def _coefficient_digest(coefficients: FloatArray) -> str:
    return hashlib.sha256(np.ascontiguousarray(coefficients, dtype=COEFFICIENT_DTYPE).tobytes()).hexdigest()


def _finite_metrics(metrics: Mapping[str, float | int | None]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise ArtifactError("bad_manifest", "metric names must be strings")
        if value is None:
            out[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ArtifactError("bad_manifest", f"metric {name!r} is not a number")
        out[name] = float(value) if math.isfinite(value) else None  # undefined (NaN) metrics are stored as null
    return out


@dataclass(frozen=True, eq=False)
class ModelArtifact:
    """A validated linear support model. Build with `ModelArtifact.build`, read with `load_artifact`."""

    coefficients: FloatArray
    intercept: float
    spec: FeatureSpec
    training: dict[str, Any]
    metrics: dict[str, float | None]
    version: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", hashlib.sha256(canonical_json(self.manifest())).hexdigest())

    @classmethod
    def build(
        cls,
        coefficients: npt.ArrayLike,
        intercept: float,
        spec: FeatureSpec,
        training: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float | int | None] | None = None,
    ) -> ModelArtifact:
        array = np.array(coefficients, dtype=COEFFICIENT_DTYPE)
        _check_coefficients(array, spec)
        if not math.isfinite(intercept):
            raise ArtifactError("non_finite", "the intercept is NaN or infinite")
        training_dict = dict(training or {})
        try:
            size = len(canonical_json(training_dict))
        except (TypeError, ValueError) as exc:
            raise ArtifactError("bad_manifest", f"training description is not plain finite JSON: {exc}") from exc
        if size > MAX_MANIFEST_BYTES // 2:  # the loader refuses manifests over MAX_MANIFEST_BYTES
            raise ArtifactError("bad_manifest", f"training description is {size} bytes; keep it under 512 KiB")
        array.setflags(write=False)
        return cls(array, float(intercept), spec, training_dict, _finite_metrics(metrics or {}))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelArtifact) and other.version == self.version

    def __hash__(self) -> int:
        return hash(self.version)

    @property
    def short_version(self) -> str:
        return self.version[:12]

    def manifest(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "format_version": FORMAT_VERSION,
            "feature_spec": self.spec.to_json_dict(),
            "intercept": self.intercept,
            "coefficients": {
                "file": COEFFICIENTS_NAME,
                "dtype": COEFFICIENT_DTYPE.str,
                "shape": [int(self.coefficients.shape[0])],
                "sha256": _coefficient_digest(self.coefficients),
            },
            "training": self.training,
            "metrics": self.metrics,
        }

    def predict_proba(self, features: HashedFeatures) -> FloatArray:
        return probabilities(self.coefficients, self.intercept, features)

    def scorer(self) -> LinearScorer:
        """Hashes rows with this artifact's spec and scores them (keeps a per-field value cache)."""
        return LinearScorer(self.spec, self.coefficients, self.intercept)

    def to_bytes(self) -> bytes:
        """The artifact file: deterministic bytes (fixed timestamps, fixed member order)."""
        npy = io.BytesIO()
        np.save(npy, self.coefficients, allow_pickle=False)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in ((MANIFEST_NAME, json.dumps(self.manifest(), indent=2, sort_keys=True).encode()),
                               (COEFFICIENTS_NAME, npy.getvalue())):  # fmt: skip
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
        return out.getvalue()

    def save(self, path: Path) -> Path:
        path.write_bytes(self.to_bytes())
        return path


def load_artifact(
    source: bytes | Path, *, max_bytes: int = DEFAULT_MAX_BYTES, expected_version: str | None = None
) -> ModelArtifact:
    """Read and validate an artifact file (bytes or a path); raises ArtifactError with the reason."""
    data = _read_bounded(source, max_bytes)
    _refuse_foreign_formats(data, "the file")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ArtifactError("not_zip", f"not a readable zip archive: {exc}") from exc
    with archive:
        members = _check_members(archive)
        manifest_bytes = _read_member(archive, members[MANIFEST_NAME], MAX_MANIFEST_BYTES)
        npy_bytes = _read_member(archive, members[COEFFICIENTS_NAME], MAX_COEFFICIENT_BYTES)
    manifest = _parse_manifest(manifest_bytes)
    spec = manifest["spec"]
    _refuse_foreign_formats(npy_bytes, COEFFICIENTS_NAME)
    coefficients = _parse_coefficients(npy_bytes, spec)
    declared = manifest["coefficients"]
    if declared.get("dtype") != COEFFICIENT_DTYPE.str or declared.get("shape") != [spec.n_features]:
        raise ArtifactError("bad_manifest", "manifest's coefficient dtype/shape disagree with the feature spec")
    if declared.get("sha256") != _coefficient_digest(coefficients):
        raise ArtifactError("integrity", "coefficients do not match the sha256 in the manifest (altered or corrupt)")
    artifact = ModelArtifact.build(coefficients, manifest["intercept"], spec, manifest["training"], manifest["metrics"])
    if expected_version is not None and artifact.version != expected_version:
        raise ArtifactError("integrity", f"content hash {artifact.short_version} is not the expected version")
    return artifact


def _read_bounded(source: bytes | Path, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > max_bytes:
            raise ArtifactError("too_large", f"artifact is {len(data)} bytes; the limit is {max_bytes}")
        return data
    try:
        size = source.stat().st_size
        if size > max_bytes:
            raise ArtifactError("too_large", f"artifact is {size} bytes; the limit is {max_bytes}")
        with source.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ArtifactError("unreadable", f"cannot read {source}: {exc.strerror}") from exc
    if len(data) > max_bytes:  # grew after stat (a pipe, or a file being written)
        raise ArtifactError("too_large", f"artifact exceeds the limit of {max_bytes} bytes")
    return data


def _looks_like_pickle(data: bytes) -> bool:
    if len(data) >= 2 and data[0] == 0x80 and data[1] <= 5:  # PROTO opcode, protocols 2-5
        return True
    # Protocols 0-1 have no header; they end with STOP ('.') and commonly open with MARK, GLOBAL,
    # an empty list/dict/tuple or a string, e.g. b"cos\nsystem\n(S'...'\ntR." .
    return data.rstrip(b"\n").endswith(b".") and data[:1] in (b"(", b"c", b"]", b"}", b")", b"S", b"V", b"I", b"N")


def _refuse_foreign_formats(data: bytes, what: str) -> None:
    if _looks_like_pickle(data):
        raise ArtifactError("pickle", f"{what} is a Python pickle: pickles can run code when loaded and are refused")
    if data.startswith(_COMPRESSED_MAGIC):
        raise ArtifactError(
            "compressed_stream", f"{what} is a compressed stream (how joblib stores pickles), not an artifact zip"
        )


def _check_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise ArtifactError("bad_members", "the zip holds duplicate member names")
    if pickled := [n for n in names if n.lower().endswith(_PICKLE_SUFFIXES)]:
        raise ArtifactError("pickle", f"the zip holds pickle/joblib members {pickled}: refused")
    if "schema.json" in names:
        raise ArtifactError(
            "skops", "a skops file: this loader accepts no skops types; export coefficients as a Groundswell artifact"
        )
    if unknown := sorted(set(names) - {MANIFEST_NAME, COEFFICIENTS_NAME}):
        raise ArtifactError(
            "unknown_member", f"unknown members {unknown}; allowed: {MANIFEST_NAME} and {COEFFICIENTS_NAME}"
        )
    if missing := [n for n in (MANIFEST_NAME, COEFFICIENTS_NAME) if n not in names]:
        raise ArtifactError("missing_member", f"the zip lacks {missing}")
    if encrypted := [info.filename for info in infos if info.flag_bits & 0x1]:
        raise ArtifactError("bad_members", f"encrypted members {encrypted}")
    return {info.filename: info for info in infos}


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    if info.file_size > limit:
        raise ArtifactError(
            "zip_bomb", f"{info.filename} declares {info.file_size} bytes uncompressed; the limit is {limit}"
        )
    try:
        with archive.open(info) as handle:
            data = _read_at_most(handle, limit + 1)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, ValueError, OSError) as exc:
        raise ArtifactError("corrupt", f"{info.filename} cannot be decompressed: {exc}") from exc
    if len(data) > limit:
        raise ArtifactError("zip_bomb", f"{info.filename} expands past {limit} bytes")
    return data


def _read_at_most(handle: IO[bytes], limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = handle.read(min(1 << 20, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> None:
    raise ArtifactError("non_finite", f"the manifest contains {name}")


def _parse_manifest(data: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ArtifactError("bad_manifest", f"manifest.json is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ArtifactError("bad_manifest", "manifest.json must be a JSON object")
    if unknown := sorted(set(raw) - _MANIFEST_KEYS):
        raise ArtifactError("bad_manifest", f"manifest has unknown keys {unknown}")
    if missing := sorted(_MANIFEST_KEYS - set(raw)):
        raise ArtifactError("bad_manifest", f"manifest lacks {missing}")
    if raw["format"] != ARTIFACT_FORMAT or raw["format_version"] != FORMAT_VERSION:
        raise ArtifactError(
            "unsupported_format",
            f"format {raw['format']!r} v{raw['format_version']!r}; "
            f"this loader reads {ARTIFACT_FORMAT} v{FORMAT_VERSION}",
        )
    try:
        spec = FeatureSpec.from_json_dict(raw["feature_spec"])
    except FeatureSpecError as exc:
        raise ArtifactError("bad_feature_spec", f"feature spec: {exc}") from exc
    intercept = raw["intercept"]
    if isinstance(intercept, bool) or not isinstance(intercept, int | float):
        raise ArtifactError("bad_manifest", "intercept must be a number")
    if not isinstance(raw["coefficients"], dict) or raw["coefficients"].get("file") != COEFFICIENTS_NAME:
        raise ArtifactError("bad_manifest", f"coefficients must describe {COEFFICIENTS_NAME}")
    if not isinstance(raw["training"], dict) or not isinstance(raw["metrics"], dict):
        raise ArtifactError("bad_manifest", "training and metrics must be JSON objects")
    return {**raw, "spec": spec, "intercept": float(intercept)}


def _parse_coefficients(data: bytes, spec: FeatureSpec) -> FloatArray:
    stream = io.BytesIO(data)
    try:
        major, _ = np.lib.format.read_magic(stream)
        if major == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream, max_header_size=MAX_NPY_HEADER_BYTES)
        elif major == 2:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream, max_header_size=MAX_NPY_HEADER_BYTES)
        else:
            raise ArtifactError("bad_coefficients", f"unsupported .npy format version {major}")
    except ArtifactError:
        raise
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ArtifactError("bad_coefficients", f"{COEFFICIENTS_NAME} is not a valid .npy file: {exc}") from exc
    if dtype != COEFFICIENT_DTYPE:
        raise ArtifactError("bad_dtype", f"coefficients have dtype {dtype}; only little-endian float64 (<f8)")
    if shape != (spec.n_features,):
        raise ArtifactError("bad_shape", f"coefficients have shape {shape}; the spec needs ({spec.n_features},)")
    stream.seek(0)
    try:
        array = np.load(stream, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise ArtifactError("bad_coefficients", f"{COEFFICIENTS_NAME} cannot be read: {exc}") from exc
    if fortran:
        array = np.ascontiguousarray(array)
    result: FloatArray = array
    _check_coefficients(result, spec)
    return result


def _check_coefficients(array: FloatArray, spec: FeatureSpec) -> None:
    if array.shape != (spec.n_features,):
        raise ArtifactError("bad_shape", f"coefficients have shape {array.shape}; the spec needs ({spec.n_features},)")
    if not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ArtifactError("non_finite", f"{bad} coefficients are NaN or infinite")
