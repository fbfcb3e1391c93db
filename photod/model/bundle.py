"""One model bundle: a folder holding `manifest.json`, `image.onnx`, `text.onnx` and `vocab.txt`.

A bundle is everything the daemon needs to encode photos and queries without torch: the two ONNX towers,
the WordPiece vocabulary, and a manifest saying how to feed them (input size, mean/std, context length).
This module reads and validates a bundle and writes its manifest; photod.model.registry keeps the bundles
installed in a data dir.

Three ids come from the file hashes:
- `image_id` identifies the image tower. Stored vectors record it, so a new text tower (what fine-tuning
  with a locked image tower produces) keeps every stored vector valid.
- `text_id` identifies the text tower.
- `model_id` identifies the whole bundle's content (files and the fields that change what they compute).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field, fields
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
# Chinese-CLIP's WordPiece vocabulary (cn_clip/clip/vocab.txt, 21128 tokens, the same for every official
# model), shipped with photod so that a bundle can be made from ONNX files where cn_clip is not installed.
VOCAB_SOURCE = Path(__file__).with_name(VOCAB_FILE)
REQUIRED_FILES = (IMAGE_FILE, TEXT_FILE, VOCAB_FILE)
# Towers above protobuf's 2 GB limit (ViT-H-14 in fp32) keep their weights in one external data file.
# checkpoint.pt: the PyTorch weights the bundle was exported from, kept on request (`photod model import
# --keep-checkpoint`) so `photod finetune` can start from the bundle alone, e.g. on a GPU box with a copied
# data dir. The daemon never reads it.
CHECKPOINT_FILE = "checkpoint.pt"
OPTIONAL_FILES = (IMAGE_FILE + ".data", TEXT_FILE + ".data", CHECKPOINT_FILE)
PRECISIONS = ("fp32", "fp16", "int8")

# Input and output names of the two ONNX graphs. Inputs: image float32 (n, 3, S, S) normalised with the
# manifest's mean/std; text int64 (n, context_length) token ids, 0-padded. Outputs: L2-normalised float32
# embeddings (n, embed_dim).
IMAGE_INPUT = "image"
TEXT_INPUT = "text"
IMAGE_OUTPUT = "image_embedding"
TEXT_OUTPUT = "text_embedding"

# A bundle name is also its folder name in the data dir, so it must be a plain, safe path component.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX_RE = re.compile(r"^[0-9a-f]+$")


@dataclass(kw_only=True)
class ModelSpec:
    """How a Chinese-CLIP model is built (cn_clip's configs) and fed (input size, token count, normalisation):
    what a bundle's manifest says of its towers, and what fine-tuning (photod.finetune) starts from."""

    arch: str
    vision_config: dict[str, Any]
    text_config: dict[str, Any]
    image_size: int
    context_length: int
    mean: list[float]
    std: list[float]

    @staticmethod
    def from_configs(arch: str, vision_config: dict[str, Any], text_config: dict[str, Any]) -> ModelSpec:
        """The spec of a model built from cn_clip's configs: its own input size, fed as every cn_clip model is
        (52 tokens, CLIP's mean and std)."""
        from photod.model.preprocess import CLIP_MEAN, CLIP_STD  # numpy: not at the daemon's start
        from photod.model.tokenizer import DEFAULT_CONTEXT_LENGTH

        return ModelSpec(
            arch=arch,
            vision_config=vision_config,
            text_config=text_config,
            image_size=int(vision_config["image_resolution"]),
            context_length=DEFAULT_CONTEXT_LENGTH,
            mean=list(CLIP_MEAN),
            std=list(CLIP_STD),
        )

    def spec(self) -> ModelSpec:
        """A copy of the spec alone (of a Bundle: without its files), sharing nothing with this one."""
        return ModelSpec(**{f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(ModelSpec)})


@dataclass
class Bundle(ModelSpec):
    """One model bundle, as described by its manifest: a ModelSpec, its files and ids. `path` is the bundle
    folder."""

    path: Path
    name: str
    embed_dim: int
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
        """The manifest dict (everything but `path`), in the order manifests are written."""
        data = asdict(self)
        return {name: data[name] for name in (*_CHECKS, *_OPTIONAL)}

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
            raise ModelError(
                f"model bundle {path} does not exist or is not a folder",
                "list the installed models with `photod model list`",
            )
        try:
            raw = manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelError(
                f"model bundle {path} has no {MANIFEST}", "re-import the model with `photod model import`"
            ) from None
        except OSError as exc:
            raise ModelError(f"model bundle {path}: cannot read {MANIFEST}: {exc}") from exc
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ModelError(
                f"model bundle {path}: {MANIFEST} is not valid JSON ({exc})",
                "re-import the model with `photod model import`",
            ) from None
        bundle = cls(path=path, **_validate_manifest(data, path))
        _check_files(bundle, verify_files)
        return bundle


# ---------------------------------------------------------------------------------------------------------
# manifest validation


def _bad(path: Path, field_name: str, what: str, value: Any) -> ModelError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ModelError(
        f"model bundle {path}: manifest field '{field_name}' {what}, got {shown}",
        "re-import the model with `photod model import`, or remove it with `photod model remove`",
    )


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
    "name": lambda v: (
        None
        if isinstance(v, str) and NAME_RE.match(v)
        else "must be a name of letters, digits, '.', '_' or '-' (at most 64)"
    ),
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
            raise ModelError(
                f"model bundle {path}: manifest field '{name}' is missing",
                "re-import the model with `photod model import`",
            )
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
            raise ModelError(
                f"model bundle {bundle.path}: file {name} is missing", "re-import the model with `photod model import`"
            )
        if verify:
            actual = sha256_file(file)
            if actual != digest:
                raise ModelError(
                    f"model bundle {bundle.path}: {name} is corrupt (sha256 {actual[:16]}..., "
                    f"manifest says {digest[:16]}...)",
                    "re-import the model with `photod model import`; the file changed after it was written",
                )


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
    keyed = {k: fields[k] for k in ("files", "embed_dim", "image_size", "context_length", "mean", "std", "precision")}
    blob = json.dumps(keyed, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def write_manifest(bundle_dir: str | os.PathLike, **fields: Any) -> Bundle:
    """Hash the files in `bundle_dir`, compute the ids, write `manifest.json` and return the loaded Bundle.

    `fields` are the manifest fields other than files and ids (name, arch, configs, embed_dim, image_size,
    context_length, mean, std, precision, source, verification, export); created_at defaults to now.
    """
    bundle_dir = Path(bundle_dir)
    files = {
        name: sha256_file(bundle_dir / name)
        for name in REQUIRED_FILES + OPTIONAL_FILES
        if (bundle_dir / name).is_file()
    }
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
