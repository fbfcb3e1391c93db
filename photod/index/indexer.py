"""Encoding staged photos into vectors and the index, with decoding running ahead of the model.

A producer thread hands batches of photo ids to a small pool of decode workers (read the stage JPEG,
decode, resize, normalise) and puts the finished arrays on a bounded queue, a few batches deep: the model
never waits for Pillow, and a slow model never lets decoded images pile up in memory. The calling thread
runs the model; each batch's vectors go to the catalog in one transaction (which also marks the photos
indexed), then into the index. The index file is saved every `save_every` photos or `save_seconds`
seconds and at the end, never per batch: the catalog is the durable copy, the file only saves a rebuild.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import numpy as np

from photod.config import WorkersConfig
from photod.index.vectorindex import VectorIndex
from photod.model.encoder import ImageEncoder
from photod.model.preprocess import image_transform
from photod.store import vectors
from photod.store.catalog import Catalog

if TYPE_CHECKING:
    from photod.model.bundle import Bundle
    from photod.store.stage import Stage

log = logging.getLogger(__name__)


class _Done:
    """The producer's last item: it has read every batch."""


_DONE = _Done()


@dataclass
class _Batch:
    ids: list[int]
    pixels: np.ndarray
    unusable: list[int] = field(default_factory=list)  # ids whose stage entry is missing or broken


# What the producer hands the model thread: a batch, the error that stopped it, or _DONE.
_Item = _Batch | BaseException | _Done


class Indexer:
    """Encodes every staged photo that has no vector of the bundle's image model yet."""

    def __init__(
        self,
        catalog: Catalog,
        stage: Stage,
        bundle: Bundle,
        index: VectorIndex,
        workers: WorkersConfig = WorkersConfig(),
        *,
        queue_batches: int = 4,
        save_every: int = 2000,
        save_seconds: float = 300.0,
        encoder: ImageEncoder | None = None,
    ):
        self.catalog = catalog
        self.stage = stage
        self.bundle = bundle
        self.index = index
        self.batch_size = max(1, workers.batch_size)
        self.decode_workers = max(1, workers.decode)
        self.queue_batches = max(1, int(queue_batches))
        self.save_every = save_every
        self.save_seconds = save_seconds
        self.encoder = encoder or ImageEncoder(bundle, threads=workers.encode_threads)
        self.model_id: str = self.encoder.model_id
        if index.model_id != self.model_id:
            raise ValueError(f"index of model {index.model_id} given to an encoder of model {self.model_id}")
        self.stats = {"encoded": 0, "unstaged": 0, "model_seconds": 0.0, "wait_seconds": 0.0}

    def pending(self) -> int:
        """How many photos are waiting to be encoded."""
        return vectors.count_pending(self.catalog, self.model_id)

    def run_once(self, stop: threading.Event | None = None, limit: int | None = None) -> int:
        """Encode what is pending now (at most `limit` photos); returns how many vectors were stored.

        With `stop` set, the batch in the model is finished and stored, and the rest is left for next time.
        """
        # Vectors can reach the catalog without this indexer: ingest gives a copy of a photo already encoded
        # the original's vectors. They join the index now, before this run's checkpoints move past them.
        self.index.refresh(self.catalog)
        stop = stop or threading.Event()
        halt = threading.Event()  # tells the producer to stop early (stop was set, or the model failed)
        q: queue.Queue[_Item] = queue.Queue(maxsize=self.queue_batches)
        producer = threading.Thread(
            target=self._produce, args=(q, stop, halt, limit), name="photod-decode", daemon=True
        )
        producer.start()
        stored = since_save = 0
        last_save = time.monotonic()
        try:
            while True:
                t0 = time.monotonic()
                item = q.get()
                self.stats["wait_seconds"] += time.monotonic() - t0
                if isinstance(item, _Done):
                    break
                if isinstance(item, BaseException):
                    raise item
                n = self._consume(item)
                stored += n
                since_save += n
                if since_save >= self.save_every or time.monotonic() - last_save >= self.save_seconds:
                    self.index.save()
                    since_save, last_save = 0, time.monotonic()
                if stop.is_set():
                    break
        finally:
            halt.set()
            _drain(q)
            producer.join()
            if stored:
                self.index.save()
        if stored:
            log.info("encoded %d photos with model %s", stored, self.model_id)
        return stored

    # ---- producer: read and preprocess ahead of the model ------------------------------------------

    def _produce(self, q: queue.Queue[_Item], stop: threading.Event, halt: threading.Event, limit: int | None) -> None:
        try:
            with ThreadPoolExecutor(self.decode_workers, thread_name_prefix="photod-decode") as pool:
                for ids in self._batches(stop, halt, limit):
                    arrays = list(pool.map(self._prepare, ids))
                    ok = [(pid, a) for pid, a in zip(ids, arrays) if a is not None]
                    batch = _Batch(
                        ids=[pid for pid, _ in ok],
                        pixels=np.stack([a for _, a in ok]) if ok else np.zeros((0,), np.float32),
                        unusable=[pid for pid, a in zip(ids, arrays) if a is None],
                    )
                    if not _put(q, batch, halt):
                        return
        except BaseException as exc:  # handed to the model thread, which raises it
            _put(q, exc, halt)
            return
        _put(q, _DONE, halt)

    def _batches(self, stop: threading.Event, halt: threading.Event, limit: int | None = None) -> Iterator[list[int]]:
        # Pages by id so that each photo is tried once per run, even one that keeps failing.
        # A separate read-only connection: the model thread owns self.catalog.
        reader = Catalog(self.catalog.path, migrate=False)
        try:
            after = after_count = 0
            while not (stop.is_set() or halt.is_set()):
                ids = vectors.pending_encode(reader, self.model_id, self.batch_size * 8, after_id=after)
                if not ids:
                    return
                after = ids[-1]
                for start in range(0, len(ids), self.batch_size):
                    if stop.is_set() or halt.is_set() or (limit is not None and start + after_count >= limit):
                        return
                    yield ids[start : start + self.batch_size]
                after_count += len(ids)
        finally:
            reader.close()

    def _prepare(self, photo_id: int) -> np.ndarray | None:
        """The model input of one staged photo, or None when its stage entry is missing or unreadable."""
        try:
            img = self.stage.get_image(photo_id)
            if img is None:
                return None
            return image_transform(img, self.encoder.size, self.encoder.mean, self.encoder.std)
        except Exception as exc:  # a damaged stage entry costs that photo a re-stage, never the run
            log.warning("stage entry of photo %d cannot be decoded (%s)", photo_id, exc)
            return None

    # ---- consumer: the model, the catalog, the index -----------------------------------------------

    def _consume(self, batch: _Batch) -> int:
        if batch.unusable:
            n = self.catalog.unstage(batch.unusable)
            self.stats["unstaged"] += n
            log.warning(
                "%d photos have no usable stage entry; handed back to staging: %s",
                len(batch.unusable),
                batch.unusable[:10],
            )
        if not batch.ids:
            return 0
        t0 = time.monotonic()
        vecs = self.encoder.encode_array(batch.pixels)
        self.stats["model_seconds"] += time.monotonic() - t0
        stored = vectors.store_vectors(self.catalog, self.model_id, batch.ids, vecs)
        if stored:
            keep = np.isin(np.asarray(batch.ids), stored)
            # The index gets the float16-rounded values the catalog holds, so it stays an exact cache: a
            # rebuild from the catalog gives the very same scores.
            held = vecs[keep].astype(np.float16).astype(np.float32)
            self.index.add(np.asarray(batch.ids, dtype=np.int64)[keep], held)
        # Rows written before this run were added by its refresh, and during the run this indexer is the
        # only writer here, so every row written so far is in the index now. (A row another process
        # slipped in meanwhile is still found by id at the next load's catch-up.)
        self.index.checkpoint(vectors.max_rowid(self.catalog), time.time())
        self.stats["encoded"] += len(stored)
        return len(stored)


def _put(q: queue.Queue[_Item], item: _Item, halt: threading.Event) -> bool:
    """Put on the bounded queue, giving up when the consumer has stopped listening."""
    while not halt.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _drain(q: queue.Queue[_Item]) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return
