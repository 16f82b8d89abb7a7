"""Artifacts: a faithful round trip, a content-hash version, and hostile files refused for the right reason."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from models.scoring.artifact import ArtifactError, ModelArtifact, load_artifact
from models.scoring.features import FeatureSpec, FieldSpec, HashedFeatures

SPEC = FeatureSpec("art", 10, (FieldSpec("party"), FieldSpec("precinct_id")))
MARKER = "groundswell-artifact-test-marker"


class Exploit:
    """Unpickling this creates a marker file: proof that a loader executed code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.path),))


@pytest.fixture
def artifact() -> ModelArtifact:
    rng = np.random.default_rng(4)
    w = np.zeros(SPEC.n_features)
    w[rng.choice(SPEC.n_features, 40, replace=False)] = rng.normal(0, 1, 40)
    return ModelArtifact.build(w, -0.4, SPEC, {"description": "test", "labels": 1234}, {"auc": 0.81, "ece": None})


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def manifest_for(artifact: ModelArtifact, coefficients: np.ndarray | None = None, **changes: Any) -> bytes:
    manifest = artifact.manifest()
    if coefficients is not None:
        manifest["coefficients"]["sha256"] = hashlib.sha256(np.ascontiguousarray(coefficients).tobytes()).hexdigest()
        manifest["coefficients"]["shape"] = list(coefficients.shape)
    manifest.update(changes)
    return json.dumps(manifest).encode()


def refused(data: bytes | Path, code: str, **kwargs: Any) -> str:
    with pytest.raises(ArtifactError) as info:
        load_artifact(data, **kwargs)
    assert info.value.code == code, str(info.value)
    return str(info.value)


# --- good artifacts -------------------------------------------------------------------------------
def test_round_trip_through_bytes_and_files(artifact: ModelArtifact, tmp_path: Path) -> None:
    again = load_artifact(artifact.to_bytes())
    np.testing.assert_array_equal(again.coefficients, artifact.coefficients)
    assert again.intercept == artifact.intercept and again.spec == SPEC
    assert again.training == {"description": "test", "labels": 1234}
    assert again.metrics == {"auc": 0.81, "ece": None}
    assert again.version == artifact.version and again == artifact
    from_file = load_artifact(artifact.save(tmp_path / "model.gsm"), expected_version=artifact.version)
    assert from_file.version == artifact.version
    features = HashedFeatures(np.array([[1, 2], [3, 900]], dtype=np.int32), SPEC.n_features)
    np.testing.assert_array_equal(from_file.predict_proba(features), artifact.predict_proba(features))


def test_version_is_the_content_not_the_container(artifact: ModelArtifact) -> None:
    assert artifact.to_bytes() == artifact.to_bytes()  # deterministic files
    manifest = json.dumps(artifact.manifest(), indent=None, separators=(", ", ": ")).encode()  # other whitespace
    stored = make_zip({"coefficients.npy": npy(artifact.coefficients), "manifest.json": manifest}, zipfile.ZIP_STORED)
    assert load_artifact(stored).version == artifact.version
    canonical = json.dumps(artifact.manifest(), sort_keys=True, separators=(",", ":")).encode()
    assert artifact.version == hashlib.sha256(canonical).hexdigest()

    w = artifact.coefficients.copy()
    w[7] += 1e-9
    variants = [
        ModelArtifact.build(w, artifact.intercept, SPEC, artifact.training, artifact.metrics),
        ModelArtifact.build(
            artifact.coefficients, artifact.intercept + 1e-9, SPEC, artifact.training, artifact.metrics
        ),
        ModelArtifact.build(
            artifact.coefficients, artifact.intercept, SPEC, {"description": "other"}, artifact.metrics
        ),
    ]
    assert len({artifact.version, *(v.version for v in variants)}) == 4


# --- hostile and broken files -----------------------------------------------------------------------
def test_pickles_are_refused_without_being_run(tmp_path: Path) -> None:
    marker = tmp_path / MARKER
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        message = refused(pickle.dumps(Exploit(marker), protocol=protocol), "pickle")
        assert "pickle" in message
    joblib.dump(Exploit(marker), tmp_path / "model.joblib")
    refused(tmp_path / "model.joblib", "pickle")
    joblib.dump(Exploit(marker), tmp_path / "model.joblib.z", compress=3)
    refused(tmp_path / "model.joblib.z", "compressed_stream")
    assert not marker.exists()


def test_pickled_members_and_object_arrays_are_refused_without_being_run(
    artifact: ModelArtifact, tmp_path: Path
) -> None:
    marker = tmp_path / MARKER
    manifest = artifact.to_bytes()
    with zipfile.ZipFile(io.BytesIO(manifest)) as archive:
        manifest_json = archive.read("manifest.json")
    payload = pickle.dumps(Exploit(marker))
    refused(make_zip({"manifest.json": manifest_json, "coefficients.npy": npy(artifact.coefficients),
                      "model.pkl": payload}), "pickle")  # fmt: skip
    refused(make_zip({"manifest.json": manifest_json, "coefficients.npy": payload}), "pickle")
    objects = np.empty(SPEC.n_features, dtype=object)
    objects[:] = 0.0
    objects[0] = Exploit(marker)
    refused(
        make_zip({"manifest.json": manifest_json, "coefficients.npy": npy(objects, allow_pickle=True)}), "bad_dtype"
    )
    assert not marker.exists()


def test_skops_files_are_refused(artifact: ModelArtifact) -> None:
    schema = {"__class__": "LogisticRegression", "__module__": "sklearn.linear_model", "protocol": 2,
              "content": {"__class__": "eval", "__module__": "builtins"}}  # fmt: skip
    message = refused(make_zip({"schema.json": json.dumps(schema).encode(), "key.npy": npy(np.zeros(3))}), "skops")
    assert "skops" in message


def test_members_must_be_exactly_the_manifest_and_the_coefficients(artifact: ModelArtifact) -> None:
    with zipfile.ZipFile(io.BytesIO(artifact.to_bytes())) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    assert "readme.txt" in refused(make_zip({**members, "readme.txt": b"hi"}), "unknown_member")
    refused(make_zip({"manifest.json": members["manifest.json"]}), "missing_member")
    refused(make_zip({**members, "../escape.npy": b"x"}), "unknown_member")
    refused(b"this is not an artifact at all, just some text", "not_zip")
    duplicated = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(duplicated, "w") as archive:
        warnings.simplefilter("ignore")
        for name, data in [*members.items(), ("manifest.json", members["manifest.json"])]:
            archive.writestr(name, data)
    refused(duplicated.getvalue(), "bad_members")


def test_size_limits_and_zip_bombs(artifact: ModelArtifact, tmp_path: Path) -> None:
    data = artifact.to_bytes()
    refused(data, "too_large", max_bytes=len(data) - 1)
    path = tmp_path / "big.gsm"
    path.write_bytes(data)
    refused(path, "too_large", max_bytes=100)
    manifest = manifest_for(artifact)
    huge = b"\x00" * (40 << 20)  # 40 MiB of zeros: ~40 KiB compressed
    bomb = make_zip({"manifest.json": manifest, "coefficients.npy": huge})
    assert len(bomb) < (1 << 20)
    assert "declares" in refused(bomb, "zip_bomb")
    refused(make_zip({"manifest.json": b" " * ((1 << 20) + 1), "coefficients.npy": npy(artifact.coefficients)}),
            "zip_bomb")  # fmt: skip


def test_a_zip_that_lies_about_its_sizes_is_refused(artifact: ModelArtifact) -> None:
    bomb = bytearray(make_zip({"manifest.json": manifest_for(artifact), "coefficients.npy": b"\x00" * (40 << 20)}))
    # Rewrite the uncompressed size of coefficients.npy to 1000 bytes, in its local and central headers.
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := bomb.find(signature, start)) >= 0:
            name_offset = 30 if signature == b"PK\x03\x04" else 46
            if bytes(bomb[start + name_offset : start + name_offset + 16]) == b"coefficients.npy":
                struct.pack_into("<I", bomb, start + size_offset, 1000)
            start += 4
    refused(bytes(bomb), "corrupt")


def test_numbers_dtypes_and_shapes_are_checked(artifact: ModelArtifact) -> None:
    w = artifact.coefficients.copy()
    w[3] = np.nan
    refused(make_zip({"manifest.json": manifest_for(artifact, w), "coefficients.npy": npy(w)}), "non_finite")
    w[3] = np.inf
    refused(make_zip({"manifest.json": manifest_for(artifact, w), "coefficients.npy": npy(w)}), "non_finite")
    big_endian = artifact.coefficients.astype(">f8")
    refused(make_zip({"manifest.json": manifest_for(artifact), "coefficients.npy": npy(big_endian)}), "bad_dtype")
    as_float32 = artifact.coefficients.astype(np.float32)
    refused(make_zip({"manifest.json": manifest_for(artifact), "coefficients.npy": npy(as_float32)}), "bad_dtype")
    short = artifact.coefficients[:-1].copy()
    refused(make_zip({"manifest.json": manifest_for(artifact, short), "coefficients.npy": npy(short)}), "bad_shape")
    nan_manifest = manifest_for(artifact).replace(b'"intercept": -0.4', b'"intercept": NaN')
    assert b"NaN" in nan_manifest
    refused(make_zip({"manifest.json": nan_manifest, "coefficients.npy": npy(artifact.coefficients)}), "non_finite")
    with pytest.raises(ArtifactError) as info:
        ModelArtifact.build(w, 0.0, SPEC)
    assert info.value.code == "non_finite"


def test_manifests_are_checked(artifact: ModelArtifact) -> None:
    coefficients = npy(artifact.coefficients)

    def with_manifest(raw: bytes) -> bytes:
        return make_zip({"manifest.json": raw, "coefficients.npy": coefficients})

    refused(with_manifest(manifest_for(artifact, extra="x")), "bad_manifest")
    refused(with_manifest(manifest_for(artifact, format_version=2)), "unsupported_format")
    refused(with_manifest(manifest_for(artifact, format="sklearn-pickle")), "unsupported_format")
    refused(with_manifest(manifest_for(artifact, feature_spec={"version": "x", "hash_bits": 99, "fields": []})),
            "bad_feature_spec")  # fmt: skip
    refused(with_manifest(manifest_for(artifact, intercept="0.1")), "bad_manifest")
    refused(with_manifest(b"[" * 100_000 + b"]" * 100_000), "bad_manifest")
    refused(with_manifest(b"\xff\xfe not utf-8"), "bad_manifest")


def test_tampering_is_detected(artifact: ModelArtifact) -> None:
    w = artifact.coefficients.copy()
    w[int(np.flatnonzero(w)[0])] *= 2  # a changed weight under the original manifest
    message = refused(make_zip({"manifest.json": manifest_for(artifact), "coefficients.npy": npy(w)}), "integrity")
    assert "sha256" in message
    other = ModelArtifact.build(w, artifact.intercept, SPEC)
    refused(other.to_bytes(), "integrity", expected_version=artifact.version)
