"""`photod scan`: one pass over the roots, staging and encoding everything, then exit (cron, scripts, GPU boxes)."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field

from photod.config import Config
from photod.errors import NoModelError
from photod.ingest.ingester import Ingester, check_stage_consistency
from photod.roots.presence import RootKeeper
from photod.service.heap import keep_heap_small
from photod.service.models import ModelWorker
from photod.service.parts import open_ingester
from photod.service.progress import Progress
from photod.service.signals import SignalWorker
from photod.store.catalog import Catalog, open_catalog, prepare_data_dir
from photod.store.stage import Stage


@dataclass
class ScanSummary:
    roots_scanned: int = 0
    offline: list[str] = field(default_factory=list)
    seen: int = 0
    new: int = 0
    changed: int = 0
    deleted: int = 0
    staged: int = 0
    failed: int = 0
    moved: int = 0
    encoded: int = 0
    model: str | None = None
    channels: dict[str, int] = field(default_factory=dict)  # places, captions, filtered, text: after encoding

    def summary(self) -> str:
        lines = [
            f"scanned {self.roots_scanned} root(s): {self.seen} files, {self.new} new, "
            f"{self.changed} changed, {self.deleted} deleted",
            f"staged {self.staged}, failed {self.failed}, matched {self.moved} moved files",
        ]
        if self.model:
            lines.append(f"encoded {self.encoded} with {self.model}")
        else:
            lines.append(
                "no model installed: photos are staged and will be encoded once one is; " + NoModelError().hint
            )
        if any(self.channels.values()):
            done = {"places": 0, "captions": 0, "text": 0, "filtered": 0, **self.channels}
            lines.append(
                "then: {places} places named, {captions} captions embedded, text read in {text} photos "
                "staged before".format(**done)
                + (f", the stored text of {n} filtered for stray marks" if (n := done["filtered"]) else "")
            )
        lines += [f"offline: {path}" for path in self.offline]
        return "\n".join(lines)


def scan_once(cfg: Config, root: str | None = None, encode: bool = True) -> ScanSummary:
    keep_heap_small()
    out = ScanSummary()
    with contextlib.ExitStack() as parts:  # each part closed, in reverse, however the scan ends
        cat = parts.enter_context(open_catalog(cfg, owner=True))
        stage = parts.enter_context(Stage(cfg.data_dir))
        check_stage_consistency(cat, stage)
        _scan_roots(cat, [cat.find_root(root)] if root else cat.active_roots(), out, cfg.workers.scan_threads)
        ingester = open_ingester(cfg, cat, stage)
        parts.callback(ingester.close)
        worker = ModelWorker(cfg, cat, stage)
        parts.callback(worker.close)
        _stage_all(cfg, ingester, out)
        if encode:
            _encode_all(worker, out)
        out.channels = SignalWorker(cfg, cat, ingester, worker.model if encode else None).drain()
    return out


def reindex(cfg: Config) -> ScanSummary:
    """Encode everything staged for the active model, touching no root: for a GPU box working over a copy of
    the data dir (copy it back, and the daemon picks the vectors up on its next start)."""
    prepare_data_dir(cfg.data_dir)
    out = ScanSummary()
    with contextlib.ExitStack() as parts:
        cat = parts.enter_context(Catalog.in_data_dir(cfg.data_dir))
        stage = parts.enter_context(Stage(cfg.data_dir))
        worker = ModelWorker(cfg, cat, stage)
        parts.callback(worker.close)
        _encode_all(worker, out)
    return out


def _scan_roots(cat: Catalog, roots, out: ScanSummary, threads: int) -> None:
    keeper = RootKeeper(cat, threads=threads)
    for r, presence in keeper.check(roots):
        if not presence.online:
            n = keeper.take_offline(r, presence.reason)
            out.offline.append(f"{r.path} ({presence.reason}; {n} photos kept)")
            continue
        keeper.bring_online(r, presence.device)
        bar = Progress(f"scanning {r.path}")
        report = keeper.scan(r.id, on_progress=bar.update)
        bar.close()
        out.roots_scanned += 1
        out.seen += report.seen
        out.new += report.new
        out.changed += report.changed
        out.deleted += report.deleted


def _stage_all(cfg: Config, ingester: Ingester, out: ScanSummary) -> None:
    bar = Progress("staging", total=ingester.catalog.counts()["new"])
    while True:
        report = ingester.ingest_batch(cfg.workers.batch_size * 4)
        done = report.done  # includes copies reused from the stage, which leave `new` without decoding
        if not done:
            break
        out.staged += report.staged + report.reused
        out.failed += report.failed
        out.moved += report.adopted
        bar.advance(done)
    bar.close()


def _encode_all(worker: ModelWorker, out: ScanSummary) -> None:
    worker.refresh()
    if worker.bundle is None:
        return
    out.model = worker.bundle.name
    bar = Progress("encoding", total=worker.pending())
    stop = threading.Event()
    while n := worker.step(stop):
        out.encoded += n
        bar.advance(n)
    bar.close()
