"""The daemon's model side: which bundle is active, its index, and encoding what is staged.

Switching models never leaves search without an index. `models/ACTIVE` names the bundle the person chose;
`models/SERVING` names the bundle whose index is complete, which is what search uses. When the two differ
(a new image tower), the daemon encodes the stage for the new one while the old keeps serving, then moves
SERVING over. A text-tower-only change (a `lit` finetune) keeps the image id, so it serves at once.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from photod import vectors
from photod.catalog import Catalog
from photod.config import Config
from photod.stage import Stage

log = logging.getLogger(__name__)

ENCODE_CHUNK = 256  # photos per step: small enough that watcher events and presence checks stay prompt


def serving_file(data_dir: Path) -> Path:
    return Path(data_dir) / "models" / "SERVING"


def serving_bundle(data_dir: Path):
    """The bundle search should use: SERVING if it names an installed bundle, else the active one."""
    from photod.bundle import Bundle, active_bundle, models_dir

    marker = serving_file(data_dir)
    if marker.exists():
        name = marker.read_text().strip()
        path = models_dir(data_dir) / name
        if name and path.is_dir():
            try:
                return Bundle.load(path)
            except Exception as exc:  # noqa: BLE001 - fall back to the active bundle, and say why
                log.warning("serving model %s cannot be loaded (%s); using the active one", name, exc)
    return active_bundle(data_dir)


def _write_serving(data_dir: Path, name: str) -> None:
    from photod.bundle import write_atomic

    write_atomic(serving_file(data_dir), name + "\n")


class ModelWorker:
    def __init__(self, cfg: Config, catalog: Catalog, stage: Stage):
        self.cfg = cfg
        self.catalog = catalog
        self.stage = stage
        self.bundle = None
        self.index = None
        self.indexer = None
        self._serving_name: str | None = None

    def refresh(self) -> None:
        """Pick up a newly chosen model (cheap when nothing changed: one small file read)."""
        try:
            from photod.bundle import active_bundle
        except ImportError:  # pragma: no cover - bundle support is part of photod
            return
        try:
            target = active_bundle(self.cfg.data_dir)
        except Exception as exc:  # noqa: BLE001 - a broken model must not stop cataloguing
            log.error("the active model cannot be used: %s", exc)
            return
        if target is None:
            self._unload()
            return
        if self.bundle is not None and target.model_id == self.bundle.model_id:
            return
        self._load(target)

    def _load(self, bundle) -> None:
        from photod.index import VectorIndex
        from photod.indexer import Indexer

        self.close()
        log.info("model %s active (%s, %s)", bundle.name, bundle.arch, bundle.precision)
        vectors.reset_for_model(self.catalog, bundle.image_id)
        self.index = VectorIndex(self.cfg.data_dir, bundle.image_id, bundle.embed_dim, kind=self.cfg.index_kind,
                                 approximate_above=self.cfg.approximate_above)
        self.index.load(self.catalog)
        self.indexer = Indexer(self.catalog, self.stage, bundle, self.index, batch_size=self.cfg.batch_size,
                               threads=self.cfg.encode_threads, decode_workers=self.cfg.decode_workers)
        self.bundle = bundle
        self._maybe_serve()

    def _unload(self) -> None:
        if self.bundle is not None:
            log.info("no model active: cataloguing and staging only")
        self.close()

    def pending(self) -> int:
        return vectors.count_pending(self.catalog, self.bundle.image_id) if self.bundle else 0

    def step(self, stop: threading.Event) -> int:
        """Encode up to one chunk of staged photos; returns how many were encoded."""
        if self.indexer is None:
            return 0
        n = self.indexer.run_once(stop, limit=ENCODE_CHUNK)
        if n == 0:
            self._maybe_serve()
        return n

    def _maybe_serve(self) -> None:
        """Once nothing is left to encode for the active model, search switches to it."""
        if self.bundle is None or self._serving_name == self.bundle.name:
            return
        if self.pending() == 0:
            self.index.save()
            _write_serving(self.cfg.data_dir, self.bundle.name)
            self._serving_name = self.bundle.name
            log.info("search now uses model %s (%d photos indexed)", self.bundle.name, len(self.index))

    def forget(self, photo_ids: list[int]) -> None:
        if self.index is not None:
            self.index.remove(photo_ids)

    def close(self) -> None:
        if self.index is not None:
            self.index.save()
        self.bundle = self.index = self.indexer = None
