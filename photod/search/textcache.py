"""Text embeddings remembered between queries: the TUI asks for the same words at every key typed, and a query
starts embedding its words (prefetch) while its other channels run, then waits for them (get).

One TextEmbeddings holds the embeddings of one text tower, as text -> Future: a text being embedded is waited
for, never embedded twice. A searcher makes a new one when the serving text tower changes, so embeddings of
two towers never mix.
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor, Future
from typing import Callable, Sequence

import numpy as np

REMEMBERED = 256  # texts kept, the oldest asked for dropped first

Encode = Callable[[list[str]], Sequence[np.ndarray]]


class TextEmbeddings:
    """The unit embeddings of one text tower's texts, safe to use from several threads (the TUI prefetches
    from its input thread while a query runs on another)."""

    def __init__(self, tower: str, encode: Encode, pool: Executor, remembered: int = REMEMBERED):
        self.tower = tower  # the text tower's id (photod.model.bundle.Bundle.text_id)
        self._encode = encode
        self._pool = pool  # where prefetch embeds
        self._remembered = remembered
        self._lock = threading.Lock()
        self._futures: dict[str, Future[np.ndarray]] = {}  # done, or being embedded by whoever claimed it

    def prefetch(self, texts: Sequence[str]) -> None:
        """Start embedding the texts not known yet on a worker thread, and return at once."""
        claimed, _ = self._claim(texts)
        if claimed:
            try:
                self._pool.submit(self._embed, claimed)
            except RuntimeError:  # the pool is shut down (the searcher closing): embed them here
                self._embed(claimed)

    def get(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The texts' embeddings, in order. Those not known are embedded here, in one batch (a query's words,
        its exclusions and the words without those held as text: one text-model call instead of three); those
        being embedded already are waited for. What the text model raised is raised here, and a text that
        failed is embedded again when next asked for."""
        claimed, futures = self._claim(texts)
        if claimed:
            self._embed(claimed)
        return [future.result() for future in futures]

    def _claim(self, texts: Sequence[str]) -> tuple[dict[str, Future[np.ndarray]], list[Future[np.ndarray]]]:
        """(the texts no one has embedded or is embedding, now this caller's to embed, with their futures;
        the future of every text asked for, in order)."""
        with self._lock:
            claimed: dict[str, Future[np.ndarray]] = {
                t: Future() for t in dict.fromkeys(texts) if t not in self._futures
            }
            self._futures.update(claimed)
            futures = [self._futures[t] for t in texts]
            while len(self._futures) > self._remembered:  # a future dropped here still reaches its waiters
                self._futures.pop(next(iter(self._futures)))
        return claimed, futures

    def _embed(self, claimed: dict[str, Future[np.ndarray]]) -> None:
        try:
            vectors = self._encode(list(claimed))
        except BaseException as exc:  # whoever waits on these texts raises it
            with self._lock:
                for text, future in claimed.items():
                    if self._futures.get(text) is future:
                        del self._futures[text]
            for future in claimed.values():
                future.set_exception(exc)
            return
        for future, vector in zip(claimed.values(), vectors):
            future.set_result(np.ascontiguousarray(vector, dtype=np.float32))
