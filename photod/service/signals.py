"""The search channels the daemon and `photod scan` fill beside staging and encoding: place names from GPS,
text in photos staged before text was read, and the text tower's embedding of captions.

This is the low-priority work: it runs when nothing is left to stage or encode, a small batch at a time, so
new photos always come first. Each part is off when its `[signals]` key says so, and where what it needs is
not installed (the OCR extra) it says so once and stays off; search then simply has one channel fewer.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from photod.config import Config
from photod.errors import PhotodError
from photod.ingest.ingester import Ingester
from photod.store import signals
from photod.store.catalog import Catalog
from photod.store.signals import FoundPlace

if TYPE_CHECKING:
    from photod.index.modelslot import ModelSlot
    from photod.ingest.ocr import TextReader
    from photod.ingest.places import Gazetteer

log = logging.getLogger(__name__)

PLACES_CHUNK = 500  # lookups are microseconds each: a chunk is one transaction, not a long step
CAPTIONS_CHUNK = 32  # captions per text tower call
FILTER_CHUNK = 500  # stored readings filtered per step: one transaction of JSON, no model
TEXT_CHUNK = 8  # photos read again from their drive per step: a few seconds on a small board
# After a step that found nothing to do, the daemon's idle loop asks again only this much later: each look
# is a query over the catalog, which at 100,000 photos is not free on a small board once a second.
IDLE_RECHECK = 10.0


def open_text_reader(cfg: Config) -> TextReader | None:
    """The OCR reader photod stages with, or None (logged once) when text is not to be, or cannot be, read."""
    if not cfg.signals.ocr:
        return None
    from photod.ingest import ocr

    why = ocr.unavailable()
    if why is not None:
        log.warning("text in photos is not read: %s (set signals.ocr = false to silence this)", why)
        return None
    return ocr.TextReader(threads=cfg.signals.ocr_threads)


def open_gazetteer(cfg: Config) -> Gazetteer | None:
    """The offline place lookup, or None (logged once) when places are off or their data is missing."""
    if not cfg.signals.places:
        return None
    from photod.ingest import places

    why = places.unavailable()
    if why is not None:
        log.warning("places are not named: %s", why)
        return None
    return places.Gazetteer()


class SignalWorker:
    """Fills the channels a batch at a time; `step()` returns how much it did (0: nothing left now)."""

    def __init__(self, cfg: Config, catalog: Catalog, ingester: Ingester, model: ModelSlot | None):
        self.cfg = cfg
        self.catalog = catalog
        self.ingester = ingester
        self.model = model
        self.gazetteer = open_gazetteer(cfg)
        self._idle_until = 0.0

    def step(self) -> int:
        """One batch of whichever channel has work, places first; 0 when none has (then the next IDLE_RECHECK
        seconds' steps return 0 without looking)."""
        if time.monotonic() < self._idle_until:
            return 0
        done = self.place_batch() or self.caption_batch() or self.text_filter_batch() or self.text_batch()
        if not done:
            self._idle_until = time.monotonic() + IDLE_RECHECK
        return done

    def drain(self) -> dict[str, int]:
        """Everything there is to do now (`photod scan`): how many places, captions, photos' text filtered and
        read were done."""
        done = {}
        for part, batch in (
            ("places", self.place_batch),
            ("captions", self.caption_batch),
            ("filtered", self.text_filter_batch),
            ("text", self.text_batch),
        ):
            done[part] = 0
            while n := batch():
                done[part] += n
        return done

    def place_batch(self) -> int:
        """Name the places of up to a chunk of photos whose GPS has no place from the current data."""
        if self.gazetteer is None:
            return 0
        from photod.ingest.places import DATA_VERSION

        pending = signals.places_pending(self.catalog, DATA_VERSION, PLACES_CHUNK)
        try:
            found = [_placed(pid, lat, lon, self.gazetteer) for pid, lat, lon in pending]
        except PhotodError as exc:  # the data itself is broken: say so once, go on without places
            log.error("places are not named: %s", exc)
            self.gazetteer = None
            return 0
        signals.store_places(self.catalog, found)
        return len(found)

    def text_filter_batch(self) -> int:
        """Bring a chunk of photos read by an earlier version of the reader to the current one where only its
        filter of the lines changed: seconds for a whole library, where reading it again would take hours
        and its drives. Done whether text is read now or not: the lines dropped were never text."""
        from photod.ingest import ocr

        done = signals.filter_text(self.catalog, ocr.FILTERED_ENGINES, ocr.ENGINE_ID, ocr.kept, FILTER_CHUNK)
        if done:
            log.info("text of %d photos filtered for %s without reading them again", done, ocr.ENGINE_ID)
        return done

    def text_batch(self, limit: int = TEXT_CHUNK) -> int:
        """Read the text of up to `limit` staged photos that have none from the current engine (photos staged
        before OCR was installed, or read by another engine), from their files, while their drive is online.
        Returns how many photos were done. Each batch is stored in one transaction: a kill loses at most the
        batch in hand, which is read again, and no photo is stored twice."""
        if self.ingester.reader is None:
            return 0
        from photod.ingest.ocr import ENGINE_ID

        # The photos the ingester leaves for a later try are among the pending: ask for as many more.
        pending = signals.text_pending(self.catalog, ENGINE_ID, limit + self.ingester.deferred)
        found = self.ingester.read_text(pending, limit)
        signals.store_text(self.catalog, found)
        if found:
            log.info("text read in %d photos staged before", len(found))
        return len(found)

    def caption_batch(self) -> int:
        """Embed up to a chunk of captions with the active model's text tower (for search by meaning)."""
        if not self.cfg.signals.caption_meaning or self.model is None or self.model.bundle is None:
            return 0
        bundle = self.model.bundle
        pending = signals.captions_without_vectors(self.catalog, bundle.text_id, CAPTIONS_CHUNK)
        if not pending:
            return 0
        vecs = self.model.text_encoder().encode([text for _id, text in pending])
        signals.store_caption_vectors(self.catalog, bundle.text_id, [cid for cid, _t in pending], vecs)
        return len(pending)


def _placed(photo_id: int, lat: float, lon: float, gazetteer: Gazetteer) -> FoundPlace:
    from photod.ingest.places import DATA_VERSION

    place = gazetteer.locate(lat, lon)
    if place is None:
        return FoundPlace(photo_id, DATA_VERSION, lat, lon)
    return FoundPlace(
        photo_id, DATA_VERSION, lat, lon, place.country_code, place.label("zh"), place.label("en"), tuple(place.names())
    )
