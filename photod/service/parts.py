"""The parts that stage photos, built the same way by the daemon and by `photod scan`."""

from __future__ import annotations

from photod.config import Config
from photod.ingest.ingester import Ingester
from photod.service.signals import open_text_reader
from photod.store.catalog import Catalog
from photod.store.stage import Stage


def open_ingester(cfg: Config, catalog: Catalog, stage: Stage) -> Ingester:
    """The ingester of a configuration: its decode workers, its video settings, and the text reader when text
    in photos is read (close it to let the reader's models go)."""
    return Ingester(
        catalog, stage, cfg.stage, workers=cfg.workers.decode, video=cfg.video, reader=open_text_reader(cfg)
    )
