"""The bundles of a data dir: each installed bundle is a folder `<data_dir>/models/<name>/`.

`models/ACTIVE` names the bundle the person chose (`photod model use`); `models/SERVING` names the one search
answers with, which trails ACTIVE until the index for the active bundle's image tower is complete.

Installing and switching are atomic (temp dir or temp file, fsync, rename: see photod.durable), so a crash
never leaves a half-copied bundle under its final name nor an ACTIVE file naming something half-written.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from photod import durable
from photod.errors import ModelError
from photod.model.bundle import MANIFEST, NAME_RE, Bundle

log = logging.getLogger(__name__)

ACTIVE_FILE = "ACTIVE"


def models_dir(data_dir: str | os.PathLike[str]) -> Path:
    """`<data_dir>/models`, where bundles are installed."""
    return Path(data_dir) / "models"


def check_name(name: str) -> str:
    """Return `name` if it is usable as a bundle folder name, else raise ModelError."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ModelError(
            f"model name {name!r} is not usable",
            "use letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit",
        )
    return name


def list_bundles(data_dir: str | os.PathLike[str]) -> list[Bundle]:
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


def active_name(data_dir: str | os.PathLike[str]) -> str | None:
    """The name in `models/ACTIVE`, or None when no model was ever activated."""
    try:
        name = (models_dir(data_dir) / ACTIVE_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def active_bundle(data_dir: str | os.PathLike[str]) -> Bundle | None:
    """The bundle named by `models/ACTIVE`, or None if there is none.

    Raises ModelError when ACTIVE names a bundle that is missing or broken: silently running without a
    model would hide that semantic search stopped working.
    """
    name = active_name(data_dir)
    if name is None:
        return None
    path = models_dir(data_dir) / name
    if not path.is_dir():
        raise ModelError(
            f"the active model {name!r} is not installed (no folder {path})",
            "pick another with `photod model use NAME` (see `photod model list`)",
        )
    return Bundle.load(path)


def use_bundle(data_dir: str | os.PathLike[str], name: str) -> Bundle:
    """Make `name` the active bundle after verifying every file's hash; a corrupt one is refused and the
    previously active bundle stays active."""
    check_name(name)
    path = models_dir(data_dir) / name
    if not path.is_dir():
        raise ModelError(
            f"no model named {name!r} in {models_dir(data_dir)}", "see the installed models with `photod model list`"
        )
    bundle = Bundle.load(path, verify_files=True)
    durable.write_text(models_dir(data_dir) / ACTIVE_FILE, name + "\n")
    log.info("active model is now %s (model id %s)", name, bundle.model_id)
    return bundle


def remove_bundle(data_dir: str | os.PathLike[str], name: str, force: bool = False) -> None:
    """Delete an installed bundle. The active one is refused unless `force`, which also clears ACTIVE."""
    check_name(name)
    root = models_dir(data_dir)
    path = root / name
    if not path.is_dir():
        raise ModelError(f"no model named {name!r} in {root}", "see the installed models with `photod model list`")
    if active_name(data_dir) == name:
        if not force:
            raise ModelError(
                f"model {name!r} is the active model; refusing to remove it",
                "switch first with `photod model use OTHER`, or pass --force",
            )
        (root / ACTIVE_FILE).unlink(missing_ok=True)
        durable.fsync_dir(root)  # ACTIVE is gone before the bundle it named
    durable.remove_dir(path)
    log.info("removed model %s", name)


def free_name(data_dir: str | os.PathLike[str], name: str, replace: bool = False) -> Path:
    """The models folder, after checking that `name` is usable and not installed (unless `replace`): an
    import checks this before its slow build, and the install again."""
    check_name(name)
    root = models_dir(data_dir)
    if (root / name).exists() and not replace:
        raise ModelError(
            f"a model named {name!r} is already installed in {root}",
            "choose another name with --name, or remove it with `photod model remove`",
        )
    return root


def install_bundle(
    src_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str], name: str, replace: bool = False
) -> Bundle:
    """Copy the bundle at `src_dir` into `models/<name>` atomically and return it.

    The source is verified (hashes) first; the copy goes to a hidden temp dir in the models folder,
    is fsynced, and is renamed into place, so `models/<name>` is either absent or complete. The manifest's
    `name` becomes `name`. An existing bundle of that name is refused unless `replace`.
    """
    root = free_name(data_dir, name, replace)
    src = Bundle.load(src_dir, verify_files=True)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
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


def serving_path(data_dir: str | os.PathLike[str]) -> Path:
    return models_dir(data_dir) / SERVING


def mark_serving(data_dir: str | os.PathLike[str], name: str) -> None:
    durable.write_text(serving_path(data_dir), name + "\n")


def serving_name(data_dir: str | os.PathLike[str]) -> str | None:
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
        same_tower = (
            Bundle.load(models_dir(data_dir) / serving).image_id == Bundle.load(models_dir(data_dir) / active).image_id
        )
    except ModelError as exc:
        log.warning("serving model %s cannot be read (%s); using %s", serving, exc, active)
        return active
    return active if same_tower else serving
