"""Model bundles on disk: a folder holding `manifest.json`, `image.onnx`, `text.onnx` and `vocab.txt`.

A bundle is everything the daemon needs to encode photos and queries without torch: the two ONNX towers,
the WordPiece vocabulary, and a manifest saying how to feed them (input size, mean/std, context length).
Bundles live in `<data_dir>/models/<name>/`; `<data_dir>/models/ACTIVE` names the one in use.

Three ids come from the file hashes:
- `image_id` identifies the image tower. Stored vectors record it, so a new text tower (what fine-tuning
  with a locked image tower produces) keeps every stored vector valid.
- `text_id` identifies the text tower.
- `model_id` identifies the whole bundle's content (files and the fields that change what they compute).

Installing and switching are atomic (temp dir or temp file, fsync, rename: see photod.durable), so a crash
never leaves a half-copied bundle under its final name nor an ACTIVE file naming something half-written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from photod import durable
from photod.errors import ModelError

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
IMAGE_FILE = "image.onnx"
TEXT_FILE = "text.onnx"
VOCAB_FILE = "vocab.txt"
REQUIRED_FILES = (IMAGE_FILE, TEXT_FILE, VOCAB_FILE)
# Towers above protobuf's 2 GB limit (ViT-H-14 in fp32) keep their weights in one external data file.
# checkpoint.pt: the PyTorch weights the bundle was exported from, kept on request (`photod model import
# --keep-checkpoint`) so `photod finetune` can start from the bundle alone, e.g. on a GPU box with a copied
# data dir. The daemon never reads it.
CHECKPOINT_FILE = "checkpoint.pt"
OPTIONAL_FILES = (IMAGE_FILE + ".data", TEXT_FILE + ".data", CHECKPOINT_FILE)
PRECISIONS = ("fp32", "fp16", "int8")
ACTIVE_FILE = "ACTIVE"

# Input and output names of the two ONNX graphs. Inputs: image float32 (n, 3, S, S) normalised with the
# manifest's mean/std; text int64 (n, context_length) token ids, 0-padded. Outputs: L2-normalised float32
# embeddings (n, embed_dim).
IMAGE_INPUT = "image"
TEXT_INPUT = "text"
IMAGE_OUTPUT = "image_embedding"
TEXT_OUTPUT = "text_embedding"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX_RE = re.compile(r"^[0-9a-f]+$")


@dataclass
class Bundle:
    """One model bundle, as described by its manifest. `path` is the bundle folder."""

    path: Path
    name: str
    arch: str
    vision_config: dict[str, Any]
    text_config: dict[str, Any]
    embed_dim: int
    image_size: int
    context_length: int
    mean: list[float]
    std: list[float]
    precision: str
    files: dict[str, str]
    image_id: str
    text_id: str
    model_id: str
    source: str
    created_at: str
    verification: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def image_path(self) -> Path:
        return self.path / IMAGE_FILE

    @property
    def text_path(self) -> Path:
        return self.path / TEXT_FILE

    @property
    def vocab_path(self) -> Path:
        return self.path / VOCAB_FILE

    def to_manifest(self) -> dict[str, Any]:
        """The manifest dict (everything but `path`), in a stable order."""
        data = asdict(self)
        data.pop("path")
        return {"format": data.pop("format"), **data}

    @classmethod
    def load(cls, path: str | os.PathLike, verify_files: bool = False) -> "Bundle":
        """Read and validate the bundle at `path`.

        Every field is checked for type and range, and every file the manifest lists must exist. With
        `verify_files` the files are hashed and compared to the manifest (slow for big models: done when a
        bundle is installed or switched to, not at every daemon start).
        Raises ModelError naming the bundle and the field or file at fault.
        """
        path = Path(path)
        manifest_path = path / MANIFEST
        if not path.is_dir():
            raise ModelError(f"model bundle {path} does not exist or is not a folder",
                             "list the installed models with `photod model list`")
        try:
            raw = manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelError(f"model bundle {path} has no {MANIFEST}",
                             "re-import the model with `photod model import`") from None
        except OSError as exc:
            raise ModelError(f"model bundle {path}: cannot read {MANIFEST}: {exc}") from exc
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ModelError(f"model bundle {path}: {MANIFEST} is not valid JSON ({exc})",
                             "re-import the model with `photod model import`") from None
        bundle = cls(path=path, **_validate_manifest(data, path))
        _check_files(bundle, verify_files)
        return bundle


# ---------------------------------------------------------------------------------------------------------
# manifest validation

def _bad(path: Path, field_name: str, what: str, value: Any) -> ModelError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ModelError(f"model bundle {path}: manifest field '{field_name}' {what}, got {shown}",
                      "re-import the model with `photod model import`, or remove it with `photod model remove`")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _positive_int(limit: int):
    def check(v: Any) -> str | None:
        return None if _is_int(v) and 0 < v <= limit else f"must be an integer between 1 and {limit}"
    return check


def _string(v: Any) -> str | None:
    return None if isinstance(v, str) else "must be a string"


def _object(v: Any) -> str | None:
    return None if isinstance(v, dict) else "must be a JSON object"


def _triple(positive: bool):
    def check(v: Any) -> str | None:
        ok = isinstance(v, list) and len(v) == 3 and all(_is_num(x) for x in v)
        if ok and positive:
            ok = all(x > 0 for x in v)
        return None if ok else "must be a list of 3 " + ("positive numbers" if positive else "numbers")
    return check


def _hex_id(v: Any) -> str | None:
    return None if isinstance(v, str) and len(v) == 16 and _HEX_RE.match(v) else "must be 16 hex digits"


def _files(v: Any) -> str | None:
    if not isinstance(v, dict):
        return "must be a JSON object of file name -> sha256"
    for name, digest in v.items():
        if name not in REQUIRED_FILES + OPTIONAL_FILES:
            return f"lists an unknown file {name!r}"
        if not (isinstance(digest, str) and len(digest) == 64 and _HEX_RE.match(digest)):
            return f"has a malformed sha256 for {name!r}"
    missing = [n for n in REQUIRED_FILES if n not in v]
    return f"must list {', '.join(missing)}" if missing else None


_CHECKS = {
    "format": lambda v: None if v == FORMAT else f"must be {FORMAT} (this photod reads bundle format {FORMAT})",
    "name": lambda v: None if isinstance(v, str) and _NAME_RE.match(v) else
    "must be a name of letters, digits, '.', '_' or '-' (at most 64)",
    "arch": lambda v: None if isinstance(v, str) and v else "must be a non-empty string",
    "vision_config": _object,
    "text_config": _object,
    "embed_dim": _positive_int(65536),
    "image_size": _positive_int(4096),
    "context_length": _positive_int(4096),
    "mean": _triple(positive=False),
    "std": _triple(positive=True),
    "precision": lambda v: None if v in PRECISIONS else f"must be one of {', '.join(PRECISIONS)}",
    "files": _files,
    "image_id": _hex_id,
    "text_id": _hex_id,
    "model_id": _hex_id,
    "source": _string,
    "created_at": _string,
}
_OPTIONAL = {"verification": _object, "export": _object}


def _validate_manifest(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ModelError(f"model bundle {path}: {MANIFEST} must hold a JSON object")
    out: dict[str, Any] = {}
    for name, check in _CHECKS.items():
        if name not in data:
            raise ModelError(f"model bundle {path}: manifest field '{name}' is missing",
                             "re-import the model with `photod model import`")
        problem = check(data[name])
        if problem:
            raise _bad(path, name, problem, data[name])
        out[name] = data[name]
    for name, check in _OPTIONAL.items():
        if name in data:
            problem = check(data[name])
            if problem:
                raise _bad(path, name, problem, data[name])
            out[name] = data[name]
    unknown = sorted(set(data) - set(_CHECKS) - set(_OPTIONAL))
    if unknown:
        # A newer photod may add optional fields; the format number guards incompatible changes.
        log.debug("model bundle %s: ignoring unknown manifest fields %s", path, unknown)
    if out["image_id"] != tower_id(out["files"], IMAGE_FILE):
        raise _bad(path, "image_id", "does not match the hash of image.onnx in 'files'", out["image_id"])
    if out["text_id"] != tower_id(out["files"], TEXT_FILE):
        raise _bad(path, "text_id", "does not match the hash of text.onnx in 'files'", out["text_id"])
    if out["model_id"] != content_id(out):
        raise _bad(path, "model_id", "does not match the bundle's content", out["model_id"])
    return out


def _check_files(bundle: Bundle, verify: bool) -> None:
    for name, digest in bundle.files.items():
        file = bundle.path / name
        if not file.is_file():
            raise ModelError(f"model bundle {bundle.path}: file {name} is missing",
                             "re-import the model with `photod model import`")
        if verify:
            actual = sha256_file(file)
            if actual != digest:
                raise ModelError(
                    f"model bundle {bundle.path}: {name} is corrupt (sha256 {actual[:16]}..., "
                    f"manifest says {digest[:16]}...)",
                    "re-import the model with `photod model import`; the file changed after it was written")


# ---------------------------------------------------------------------------------------------------------
# hashing and ids

def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tower_id(files: dict[str, str], graph_file: str) -> str:
    """Id of one tower: the first 16 hex digits of its graph's sha256 (and of its external data, if any)."""
    data_file = graph_file + ".data"
    if data_file not in files:
        return files[graph_file][:16]
    return hashlib.sha256((files[graph_file] + files[data_file]).encode()).hexdigest()[:16]


def content_id(fields: dict[str, Any]) -> str:
    """Id of a whole bundle: its files and every field that changes what the towers compute from an input.

    Name, source, creation time and verification figures are left out, so the same export installed
    under two names has one id.
    """
    keyed = {k: fields[k] for k in ("files", "embed_dim", "image_size", "context_length", "mean", "std",
                                    "precision")}
    blob = json.dumps(keyed, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def write_manifest(bundle_dir: str | os.PathLike, **fields: Any) -> Bundle:
    """Hash the files in `bundle_dir`, compute the ids, write `manifest.json` and return the loaded Bundle.

    `fields` are the manifest fields other than files and ids (name, arch, configs, embed_dim, image_size,
    context_length, mean, std, precision, source, verification, export); created_at defaults to now.
    """
    bundle_dir = Path(bundle_dir)
    files = {name: sha256_file(bundle_dir / name)
             for name in REQUIRED_FILES + OPTIONAL_FILES if (bundle_dir / name).is_file()}
    fields = dict(fields)
    fields.setdefault("created_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    fields.setdefault("verification", {})
    fields.setdefault("export", {})
    fields["files"] = files
    fields["image_id"] = tower_id(files, IMAGE_FILE)
    fields["text_id"] = tower_id(files, TEXT_FILE)
    fields["model_id"] = content_id(fields)
    manifest = {"format": FORMAT, **fields}
    durable.write_text(bundle_dir / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return Bundle.load(bundle_dir)


# ---------------------------------------------------------------------------------------------------------
# the data dir's models folder

def models_dir(data_dir: str | os.PathLike) -> Path:
    """`<data_dir>/models`, where bundles are installed."""
    return Path(data_dir) / "models"


def check_name(name: str) -> str:
    """Return `name` if it is usable as a bundle folder name, else raise ModelError."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ModelError(f"model name {name!r} is not usable",
                         "use letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit")
    return name


def list_bundles(data_dir: str | os.PathLike) -> list[Bundle]:
    """Every valid installed bundle, by name. Broken ones are skipped with a warning naming the problem."""
    root = models_dir(data_dir)
    if not root.is_dir():
        return []
    bundles = []
    for child in sorted(root.iterdir()):
        # Temp dirs of installs in progress (or interrupted) start with '.'.
        if child.name.startswith(".") or not child.is_dir():
            continue
        try:
            bundles.append(Bundle.load(child))
        except ModelError as exc:
            log.warning("skipping broken model bundle: %s", exc)
    return bundles


def active_name(data_dir: str | os.PathLike) -> str | None:
    """The name in `models/ACTIVE`, or None when no model was ever activated."""
    try:
        name = (models_dir(data_dir) / ACTIVE_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def active_bundle(data_dir: str | os.PathLike) -> Bundle | None:
    """The bundle named by `models/ACTIVE`, or None if there is none.

    Raises ModelError when ACTIVE names a bundle that is missing or broken: silently running without a
    model would hide that semantic search stopped working.
    """
    name = active_name(data_dir)
    if name is None:
        return None
    path = models_dir(data_dir) / name
    if not path.is_dir():
        raise ModelError(f"the active model {name!r} is not installed (no folder {path})",
                         "pick another with `photod model use NAME` (see `photod model list`)")
    return Bundle.load(path)


def use_bundle(data_dir: str | os.PathLike, name: str) -> Bundle:
    """Make `name` the active bundle after verifying every file's hash; a corrupt one is refused and the
    previously active bundle stays active."""
    check_name(name)
    path = models_dir(data_dir) / name
    if not path.is_dir():
        raise ModelError(f"no model named {name!r} in {models_dir(data_dir)}",
                         "see the installed models with `photod model list`")
    bundle = Bundle.load(path, verify_files=True)
    durable.write_text(models_dir(data_dir) / ACTIVE_FILE, name + "\n")
    log.info("active model is now %s (model id %s)", name, bundle.model_id)
    return bundle


def remove_bundle(data_dir: str | os.PathLike, name: str, force: bool = False) -> None:
    """Delete an installed bundle. The active one is refused unless `force`, which also clears ACTIVE."""
    check_name(name)
    root = models_dir(data_dir)
    path = root / name
    if not path.is_dir():
        raise ModelError(f"no model named {name!r} in {root}", "see the installed models with `photod model list`")
    if active_name(data_dir) == name:
        if not force:
            raise ModelError(f"model {name!r} is the active model; refusing to remove it",
                             "switch first with `photod model use OTHER`, or pass --force")
        (root / ACTIVE_FILE).unlink(missing_ok=True)
        durable.fsync_dir(root)  # ACTIVE is gone before the bundle it named
    durable.remove_dir(path)
    log.info("removed model %s", name)


def install_bundle(src_dir: str | os.PathLike, data_dir: str | os.PathLike, name: str,
                   replace: bool = False) -> Bundle:
    """Copy the bundle at `src_dir` into `models/<name>` atomically and return it.

    The source is verified (hashes) first; the copy goes to a hidden temp dir in the models folder,
    is fsynced, and is renamed into place, so `models/<name>` is either absent or complete. The manifest's
    `name` becomes `name`. An existing bundle of that name is refused unless `replace`.
    """
    check_name(name)
    src = Bundle.load(src_dir, verify_files=True)
    root = models_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    if final.exists() and not replace:
        raise ModelError(f"a model named {name!r} is already installed in {root}",
                         "choose another name with --name, or remove it with `photod model remove`")
    with durable.staged_dir(final) as tmp:
        for file in list(src.files) + [MANIFEST]:
            shutil.copyfile(src.path / file, tmp / file)
        manifest = src.to_manifest()
        manifest["name"] = name
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        Bundle.load(tmp, verify_files=True)
        os.chmod(tmp, 0o755)
    log.info("installed model %s in %s", name, final)
    return Bundle.load(final)


# ---- which bundle search uses -------------------------------------------------------------------------
# ACTIVE is the bundle the person chose. SERVING is the one whose index is complete, written by the daemon
# once it has encoded the stage for the active bundle's image tower; until then the old one keeps serving.

SERVING = "SERVING"


def serving_path(data_dir: str | os.PathLike) -> Path:
    return models_dir(data_dir) / SERVING


def mark_serving(data_dir: str | os.PathLike, name: str) -> None:
    durable.write_text(serving_path(data_dir), name + "\n")


def serving_name(data_dir: str | os.PathLike) -> str | None:
    """The bundle search should use: the active one when its image tower is the serving one's (a text-only
    change serves at once), or when nothing else is serving; otherwise the one still serving."""
    active = active_name(data_dir)
    marker = serving_path(data_dir)
    serving = marker.read_text().strip() if marker.exists() else ""
    if not serving or serving == active or not (models_dir(data_dir) / serving).is_dir():
        return active
    if active is None:
        return serving
    try:
        same_tower = Bundle.load(models_dir(data_dir) / serving).image_id == \
            Bundle.load(models_dir(data_dir) / active).image_id
    except ModelError as exc:
        log.warning("serving model %s cannot be read (%s); using %s", serving, exc, active)
        return active
    return active if same_tower else serving
