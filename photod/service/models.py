"""The daemon's model side: encoding what is staged with the active bundle, following `photod model use`.

Switching models never leaves search without an index. The person's choice (`models/ACTIVE`) is encoded
from the stage while the bundle named by `models/SERVING` keeps answering searches; once nothing is left
to encode, SERVING moves over (photod.model.registry.serving_name). A text-tower-only change (a `lit` finetune) keeps
the image tower's id, so its vectors are already complete and it serves at once. The bundle, its image
encoder and its index are held by a photod.index.modelslot.ModelSlot, as search's are.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from photod.config import Config
from photod.errors import ModelError, PhotodError
from photod.index.modelslot import ModelSlot
from photod.model import bundle as bundles
from photod.model import registry
from photod.store import vectors
from photod.store.catalog import Catalog
from photod.store.stage import Stage

if TYPE_CHECKING:
    from photod.index.indexer import Indexer
    from photod.index.vectorindex import VectorIndex

log = logging.getLogger(__name__)

# Photos per step. Between steps the daemon handles watcher events, checks its roots and pings systemd's
# watchdog, so a step must stay well under WatchdogSec even on a Raspberry Pi (about one photo a second
# with ViT-B-16 int8): 32 photos is about half a minute there, a few seconds on a PC.
ENCODE_CHUNK = 32


class ModelWorker:
    """Encodes the stage with the active model, switching when `photod model use` picks another."""

    def __init__(self, cfg: Config, catalog: Catalog, stage: Stage):
        self.cfg = cfg
        self.catalog = catalog
        self.stage = stage
        self.model = ModelSlot(
            cfg.data_dir,
            catalog,
            registry.active_name,
            threads=cfg.workers.encode_threads,
            index=cfg.index,
            keeps_index=True,
        )
        self.indexer: Indexer | None = None
        self._served = False

    @property
    def bundle(self) -> bundles.Bundle | None:
        """The bundle being encoded with; None while no model is active (or its encoder failed to open)."""
        return self.indexer.bundle if self.indexer is not None else None

    @property
    def index(self) -> VectorIndex | None:
        return self.indexer.index if self.indexer is not None else None

    def refresh(self) -> None:
        """Pick up a newly chosen model (cheap when nothing changed: a small file read and a stat)."""
        encoding = self.bundle.model_id if self.bundle is not None else None
        try:
            bundle = self.model.follow()
        except ModelError as exc:  # a broken model must not stop cataloguing
            log.error("the active model cannot be used: %s", exc)
            return
        if bundle is None:
            if self.indexer is not None:
                log.info("no model active: cataloguing and staging only")
            self.indexer = None
        elif bundle.model_id != encoding:
            self._start(bundle)

    def _start(self, bundle: bundles.Bundle) -> None:
        from photod.index.indexer import Indexer

        self.indexer = None  # until the new one stands: the old one's index and encoder are closed
        indexed, back = vectors.reset_for_model(self.catalog, bundle.image_id)
        self.indexer = Indexer(
            self.catalog, self.stage, bundle, self.model.index(), self.cfg.workers, encoder=self.model.image_encoder()
        )
        self._served = False
        log.info(
            "model %s active (%s, %s): %d photos already encoded for it, %d to encode",
            bundle.name,
            bundle.arch,
            bundle.precision,
            indexed,
            self.pending(),
        )
        self._maybe_serve()

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
        indexer = self.indexer
        if indexer is None or self._served or self.pending():
            return
        indexer.index.save()
        registry.mark_serving(self.cfg.data_dir, indexer.bundle.name)
        self._served = True
        log.info("search uses model %s (%d photos indexed)", indexer.bundle.name, len(indexer.index))

    def forget(self, photo_ids: list[int]) -> None:
        if self.index is not None:
            self.index.remove(photo_ids)

    def close(self) -> None:
        self.model.close()
        self.indexer = None


def remove_model(catalog: Catalog, data_dir: str | os.PathLike[str], name: str, force: bool = False) -> int:
    """`photod model remove`: delete a bundle, and with it the vectors and index of its image tower, unless
    another installed bundle has that tower (a `lit` fine-tune keeps the image tower of the model it started
    from, and so every vector stored for it). Returns how many vectors were deleted.

    An unused tower's vectors are never read again, and at about 1 KB a photo they (and its index) would
    otherwise stay on disk for good; re-installing the model encodes them again from the stage.
    """
    try:
        image_id = bundles.Bundle.load(registry.models_dir(data_dir) / registry.check_name(name)).image_id
    except PhotodError:
        image_id = None  # a broken bundle: its tower is unknown, so no vectors are touched
    registry.remove_bundle(data_dir, name, force=force)
    if image_id is None or any(b.image_id == image_id for b in registry.list_bundles(data_dir)):
        return 0
    from photod.index.vectorindex import remove_index

    dropped = vectors.drop_model(catalog, image_id)
    remove_index(data_dir, image_id)
    log.info("model %s removed with the %d vectors of its image tower %s", name, dropped, image_id)
    return dropped
