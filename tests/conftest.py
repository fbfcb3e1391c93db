"""Shared fixtures: real data dirs, real catalogs, the real sample photos from ../shared."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from photod.store.catalog import Catalog
from tests.support import oskit

REPO = Path(__file__).resolve().parent.parent
SAMPLES = (REPO.parent / "shared" / "photos" / "exif-samples").resolve()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the user's config or data dir."""
    monkeypatch.delenv("PHOTOD_CONFIG", raising=False)
    monkeypatch.setenv("PHOTOD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """The CLI, run in-process, points the root logger at the stderr pytest captured for that one test; once that
    stream is closed every later log line would fail to write. Put the handlers and level back after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    d = tmp_path / "data"
    d.mkdir(mode=0o700, exist_ok=True)
    return d


@pytest.fixture
def tiny_disk(tmp_path) -> Path:
    """A real 512 KiB filesystem to fill up (skipped where mounting is not allowed)."""
    with oskit.tmpfs(tmp_path / "tiny", "512k") as mnt:
        yield mnt


@pytest.fixture
def catalog(data_dir):
    cat = Catalog.in_data_dir(data_dir)
    yield cat
    cat.close()


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"sample photos not found at {SAMPLES}")
    return SAMPLES


# --- small Chinese-CLIP models imported through `photod model import`'s code path (need torch + cn_clip) ---


def _small_import(tmp_path_factory, kind: str, fp16_weights: bool):
    pytest.importorskip("cn_clip", reason="needs the finetune extra (torch, cn_clip)")
    from tests.support import modelkit

    photos = modelkit.sample_photos(SAMPLES if SAMPLES.is_dir() else None)
    return modelkit.import_small(
        tmp_path_factory.mktemp(f"small-{kind}"), kind, images=photos, fp16_weights=fp16_weights
    )


@pytest.fixture(scope="session")
def small_vit_bundle(tmp_path_factory):
    """A small ViT-image-tower checkpoint imported at fp32 (active), fp16 and int8: a modelkit.SmallImport."""
    return _small_import(tmp_path_factory, "vit", fp16_weights=False)


@pytest.fixture(scope="session")
def small_rn_bundle(tmp_path_factory):
    """A small ResNet-image-tower checkpoint with fp16 weights (as the official files store them),
    imported at fp32 (active), fp16 and int8: a modelkit.SmallImport."""
    return _small_import(tmp_path_factory, "rn", fp16_weights=True)
