"""What `photod status` and the TUI's status screen show: counts by state, roots, the active model."""

from __future__ import annotations

from typing import Any

from photod.config import Config
from photod.service import heartbeat
from photod.store.catalog import Catalog


def collect_status(cat: Catalog, cfg: Config) -> dict[str, Any]:
    counts = cat.counts()
    per_root = cat.root_counts()
    roots = [
        {
            "id": r.id,
            "path": str(r.path),
            "label": r.label,
            "online": r.online,
            "watch": r.watch,
            "watch_mode": r.watch_mode,
            "fs_type": r.fs_type,
            "photos": per_root.get(r.id, 0),
            "source": r.source,
            "last_scan_at": r.last_scan_at,
        }
        for r in cat.active_roots()
    ]
    return {
        "photos": {
            k: counts[k]
            for k in ("total", "new", "staged", "indexed", "failed", "offline", "deleted", "photos", "videos")
        },
        "roots": roots,
        "model": _model_status(cfg),
        "signals": _signals_status(cat, cfg),
        "data_dir": str(cfg.data_dir),
        "daemon": heartbeat.read(cfg.data_dir),
    }


def _model_status(cfg: Config) -> dict[str, Any] | None:
    from photod.model.registry import active_bundle

    try:
        bundle = active_bundle(cfg.data_dir)
    except Exception as exc:  # noqa: BLE001 - status must show even a broken model setting
        return {"error": str(exc)}
    if bundle is None:
        return None
    return {"name": bundle.name, "arch": bundle.arch, "precision": bundle.precision, "image_id": bundle.image_id}


def _signals_status(cat: Catalog, cfg: Config) -> dict[str, Any]:
    """How far the text and place channels are: photos done with the current OCR engine and place data, of
    those there are; or why a channel is off."""
    from photod.ingest import ocr, places
    from photod.store import signals

    out: dict[str, Any] = {}
    for name, on, module, version, progress in (
        ("text", cfg.signals.ocr, ocr, getattr(ocr, "ENGINE_ID", ""), signals.text_progress),
        ("places", cfg.signals.places, places, getattr(places, "DATA_VERSION", ""), signals.places_progress),
    ):
        why = "off in the config" if not on else module.unavailable()
        done, total = progress(cat, version)
        out[name] = {"done": done, "total": total, "version": version, "off": why}
    out["captions"] = {
        "total": int(cat.scalar("SELECT count(*) FROM captions")),
        "off": None if cfg.signals.caption_meaning else "off in the config",
    }
    return out


def format_signals(sig: dict[str, Any]) -> list[str]:
    """The lines `photod status` and the TUI's status screen give the search channels."""
    lines = []
    for name, what in (("text", "text in photos"), ("places", "places")):
        s = sig[name]
        if s["off"]:
            lines.append(f"{what}: off ({s['off']})")
        else:
            left = s["total"] - s["done"]
            lines.append(f"{what}: {s['done']} of {s['total']} done" + (f", {left} to go" if left else ""))
    return lines


def format_status(status: dict[str, Any]) -> str:
    p = status["photos"]
    lines = [
        f"files: {p['total']} ({p['photos']} photos, {p['videos']} videos; {p['indexed']} indexed, "
        f"{p['staged']} staged, {p['new']} to stage, {p['failed']} failed, {p['offline']} offline; "
        f"{p['deleted']} deleted, in grace period)",
    ]
    model = status["model"]
    if model is None:
        lines.append(
            "model: none installed (`photod model import FOLDER` of Chinese-CLIP's ONNX files, "
            "`photod model pull ViT-B-16` or `photod model import FILE.pt`)"
        )
    elif "error" in model:
        lines.append(f"model: broken: {model['error']}")
    else:
        lines.append(f"model: {model['name']} ({model['arch']}, {model['precision']})")
    lines += format_signals(status["signals"])
    lines.append(heartbeat.describe(status["daemon"]))
    lines.append(f"data dir: {status['data_dir']}")
    lines.append("roots:" if status["roots"] else "roots: none (`photod roots add PATH`)")
    for r in status["roots"]:
        state = "online" if r["online"] else "OFFLINE"
        mode = r["watch_mode"] or "not watched"
        lines.append(f"  {r['path']}  [{r['label']}]  {state}, {mode}, {r['photos']} photos")
    return "\n".join(lines)
