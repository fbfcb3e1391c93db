"""The `photod` command line.

Each subcommand is a small function that reads arguments, calls the library, and prints, declared with
`@command` together with its help and its options. Commands with --json print through `show`. Heavy modules
are imported inside the functions that need them: `photod status` and `photod search --name` start on the
catalog alone. Domain errors (photod.errors) become one friendly line with a hint and a non-zero exit;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from photod import __version__
from photod.config import LOG_LEVELS, WATCH_MODES, Config, RootConfig, load_config, make_root
from photod.errors import PhotodError
from photod.logs import setup_logging
from photod.store.catalog import open_catalog

log = logging.getLogger("photod")

Handler = Callable[[argparse.Namespace, Config], int]


@dataclass(frozen=True)
class Option:
    """One argument of a command, as argparse's add_argument takes it. `choices` may be a function returning
    them, called only when that command is run or its help shown (_CommandParser): the constants they come
    from live in modules that `photod status` and `photod search --name` must start without
    (photod.model.bundle brings hashlib)."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any]
    exclusive: str | None = None  # options with the same name here are mutually exclusive


def option(*flags: str, exclusive: str | None = None, **kwargs: Any) -> Option:
    return Option(flags, kwargs, exclusive)


JSON = option("--json", action="store_true")


@dataclass(frozen=True)
class Command:
    name: str  # "status", or "roots add" for an action of a group
    help: str
    options: tuple[Option, ...] = ()
    run: Handler | None = None  # None for a group of actions (`photod roots ACTION`)
    description: str | None = None


COMMANDS: dict[str, Command] = {}  # in the order `photod --help` lists them


def command(name: str, help: str, *options: Option, description: str | None = None) -> Callable[[Handler], Handler]:
    """Declare a command beside the function that runs it: its help and its options."""

    def register(fn: Handler) -> Handler:
        COMMANDS[name] = Command(name, help, options, fn, description)
        return fn

    return register


def group(name: str, help: str) -> None:
    """Declare a command made of actions (`photod roots add`), declared after it with `command`."""
    COMMANDS[name] = Command(name, help)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_exclusions_kept(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "cmd", None):
        parser.print_help()
        return 2
    try:
        cfg = load_config(args.config)
        setup_logging(args.log_level or cfg.daemon.log_level)
        key = args.cmd if not getattr(args, "sub", None) else f"{args.cmd} {args.sub}"
        run = COMMANDS[key].run
        assert run is not None  # a group's parser requires an action
        return run(args, cfg)
    except PhotodError as exc:
        print(f"photod: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `photod search ... | head`
        return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photod", description="Find your photos by describing them.")
    p.add_argument("--version", action="version", version=f"photod {__version__}")
    p.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $PHOTOD_CONFIG, ~/.config/photod/config.toml, ./config.toml)",
    )
    p.add_argument("--log-level", choices=LOG_LEVELS, help="override the config")
    actions = {"": p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_CommandParser)}
    for c in COMMANDS.values():
        parent, _, leaf = c.name.rpartition(" ")
        s = actions[parent].add_parser(leaf, help=c.help, description=c.description, options=c.options)
        if c.run is None:
            actions[c.name] = s.add_subparsers(dest="sub", metavar="ACTION", parser_class=_CommandParser)
            actions[c.name].required = True
    return p


class _CommandParser(argparse.ArgumentParser):
    """A command's parser, whose options are added when it is first used, to parse or to print its help: the
    choices of some come from modules the other commands must start without (see Option)."""

    def __init__(self, *args: Any, options: tuple[Option, ...] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._undeclared = options

    def _declare(self) -> None:
        options, self._undeclared = self._undeclared, ()
        exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
        for o in options:
            kwargs = o.kwargs
            if callable(kwargs.get("choices")):
                kwargs = {**kwargs, "choices": kwargs["choices"]()}
            into: argparse._ActionsContainer = self
            if o.exclusive is not None:
                if o.exclusive not in exclusive:
                    exclusive[o.exclusive] = self.add_mutually_exclusive_group()
                into = exclusive[o.exclusive]
            into.add_argument(*o.flags, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._declare()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._declare()
        return super().format_usage()

    def format_help(self) -> str:
        self._declare()
        return super().format_help()


def show(args: argparse.Namespace, data: Any, text: Callable[[], str], *, empty: str = "", default=None) -> int:
    """What a command with --json prints: `data` as JSON with --json (what scripts read: one shape for every
    command), else `text()` for a person, or `empty` (what to do next) when there is nothing to list."""
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=default))
    elif empty and not data:
        print(empty)
    else:
        print(text())
    return 0


# ---- daemon and scans --------------------------------------------------------------------------------


@command("run", "run the daemon in the foreground (watch, catalog, stage, index)")
def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    import threading

    # Handlers first: a stop request that arrives while the daemon's modules are still loading is kept.
    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("%s received: finishing the batch in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from photod.service.daemon import Daemon

    return Daemon(cfg, mounts_path=os.environ.get("PHOTOD_MOUNTINFO"), stop_event=stop).run()


@command(
    "scan",
    "one reconcile pass over the roots (and encode, when a model is active)",
    option("root", nargs="?", help="only this root (path, label or id)"),
    option("--no-encode", action="store_true", help="catalog and stage only"),
)
def cmd_scan(args: argparse.Namespace, cfg: Config) -> int:
    from photod.service.scan import scan_once

    report = scan_once(cfg, root=args.root, encode=not args.no_encode)
    print(report.summary())
    return 0


@command("tui", "the terminal UI: search, photo details, captions, status")
def cmd_tui(args: argparse.Namespace, cfg: Config) -> int:
    from photod.tui.app import run_tui

    return run_tui(cfg)


@command(
    "reindex",
    "encode everything staged for the active model, without touching the roots "
    "(uses a GPU when onnxruntime-gpu finds one)",
)
def cmd_reindex(args: argparse.Namespace, cfg: Config) -> int:
    from photod.errors import NoModelError
    from photod.service.scan import reindex

    report = reindex(cfg)
    if report.model is None:
        raise NoModelError()
    print(f"encoded {report.encoded} photos with {report.model}")
    return 0


# ---- reading the catalog -----------------------------------------------------------------------------


@command("status", "photo counts and roots", JSON)
def cmd_status(args: argparse.Namespace, cfg: Config) -> int:
    from photod.service.status import collect_status, format_status

    with open_catalog(cfg) as cat:
        status = collect_status(cat, cfg)
    return show(args, status, lambda: format_status(status))


@command("failed", "files that could not be read, and why", JSON)
def cmd_failed(args: argparse.Namespace, cfg: Config) -> int:
    from photod.search.results import shown_path
    from photod.store.names import shown

    with open_catalog(cfg) as cat:
        # `path` as in search results: a byte of the name that is not UTF-8 written \xNN; `shown` the name as
        # a person reads it, decoded and marked with its encoding (None for a UTF-8 name).
        rows = [
            {
                "id": r["id"],
                "path": os.path.join(r["root_path"], r["rel_path"]),
                "shown": os.path.join(r["root_path"], shown(r["rel_path"], r["rel_bytes"])) if r["rel_bytes"] else None,
                "error": r["error"],
            }
            for r in cat.failed()
        ]
    return show(
        args, rows, lambda: "\n".join(f"{shown_path(r)}\n    {r['error']}" for r in rows), empty="no failed files"
    )


# ---- checks and upkeep -------------------------------------------------------------------------------


@command("doctor", "check inotify limits, filesystems, permissions and dependencies")
def cmd_doctor(args: argparse.Namespace, cfg: Config) -> int:
    from photod.service.doctor import run_checks

    failures = 0
    for check in run_checks(cfg):
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[check.level]
        failures += check.level == "fail"
        print(f"[{mark}] {check.name}: {check.detail}")
        if check.hint and check.level != "ok":
            print(f"       {check.hint}")
    return 1 if failures else 0


@command("migrate", "apply catalog migrations (also done at every start)")
def cmd_migrate(args: argparse.Namespace, cfg: Config) -> int:
    from photod.store.catalog import Catalog, prepare_data_dir

    prepare_data_dir(cfg.data_dir)
    with Catalog.in_data_dir(cfg.data_dir, migrate=False) as cat:
        applied = cat.migrate()
    print("\n".join(f"applied {name}" for name in applied) if applied else "catalog is up to date")
    return 0


# ---- roots -------------------------------------------------------------------------------------------

group("roots", "the folders photod watches")


@command(
    "roots add",
    "watch a folder",
    option("path"),
    option("--label", default=""),
    option("--watch", choices=WATCH_MODES, default=RootConfig.watch),
    option("--poll-interval", type=float, default=RootConfig.poll_interval),
)
def cmd_roots_add(args: argparse.Namespace, cfg: Config) -> int:
    from photod.errors import RootError

    path = Path(args.path).expanduser().resolve()
    if not path.is_dir():
        raise RootError(f"{path} is not a folder", "give the folder that holds your photos (mount the drive first)")
    with open_catalog(cfg) as cat:
        root = cat.add_root(make_root(path, label=args.label, watch=args.watch, poll_interval=args.poll_interval))
    print(f"added root {root.id}: {root.path} ({root.label}); a running daemon picks it up within seconds")
    return 0


@command("roots list", "list roots", JSON)
def cmd_roots_list(args: argparse.Namespace, cfg: Config) -> int:
    from photod.service.status import collect_status

    with open_catalog(cfg) as cat:
        roots = collect_status(cat, cfg)["roots"]
    return show(
        args,
        roots,
        lambda: "\n".join(
            f"{r['id']:>3}  {r['path']}  [{r['label']}]  {'online' if r['online'] else 'offline'}, "
            f"{r['watch_mode'] or r['watch']}, {r['photos']} photos ({r['source']})"
            for r in roots
        ),
        empty="no roots: add one with `photod roots add PATH`",
    )


@command(
    "roots remove",
    "stop watching a folder (its photos are kept for the grace period)",
    option("root", help="path, label or id"),
)
def cmd_roots_remove(args: argparse.Namespace, cfg: Config) -> int:
    with open_catalog(cfg) as cat:
        root = cat.find_root(args.root)
        if root.source == "config" and cfg.source is not None:
            raise PhotodError(f"{root.path} comes from {cfg.source}", "remove its [[roots]] entry there instead")
        n = cat.remove_root(root.id)
    print(f"removed {root.path}: {n} photos marked deleted, kept for {cfg.daemon.deleted_grace_days:g} days")
    return 0


# ---- search ------------------------------------------------------------------------------------------


@command(
    "search",
    "search by Chinese text, by example photo, or by filename",
    option("query", nargs="*", help="what the photo shows, e.g. 海边的日落 (words: one query)"),
    option("--name", help="filename/folder text"),
    option("--like", metavar="PATH|ID", help="photos like this file or photo id"),
    option("--after", metavar="DATE", help="taken on or after (YYYY-MM-DD)"),
    option("--before", metavar="DATE", help="taken before (YYYY-MM-DD)"),
    option("--root", help="only this root (path, label or id)"),
    option("--camera", help="camera make or model contains this"),
    option("--folder", help="only this folder (relative to its root) and below"),
    option("--place", help="taken where a place name holds this (三亚, 海南, Sanya, Japan)"),
    option("-k", "--limit", type=int, default=20, help="number of results (default 20)"),
    option("--all", action="store_true", help="also the weaker matches the per-query cutoff hides"),
    JSON,
    description='The query language: 2019年夏天 三亚 海边 -人, "三亚湾" 菜单, cat + 2:dog -grass, '
    "like:PHOTO. After `search`, -word is an exclusion (a word starting with -k: after --).",
)
def cmd_search(args: argparse.Namespace, cfg: Config) -> int:
    from photod.search.finder import Filters, Query, find_once

    filters = Filters(
        after=args.after, before=args.before, root=args.root, camera=args.camera, folder=args.folder, place=args.place
    )
    outcome = find_once(
        cfg,
        Query(
            text=" ".join(args.query),
            like=args.like,
            name=args.name or "",
            filters=filters,
            k=args.limit,
            show_all=args.all,
        ),
    )
    if outcome.fallback:
        print(
            f"photod: {outcome.fallback.message}; searching {outcome.fallback.SEARCHED_WITHOUT} instead.\n"
            f"  hint: {outcome.fallback.hint}",
            file=sys.stderr,
        )
    for note in outcome.parsed.notes if outcome.parsed else ():
        print(f"photod: {note}", file=sys.stderr)
    # What the query was understood as, and what was hidden, on stderr: --json's stdout stays the results.
    if outcome.understood:
        print("understood: " + "".join(f"「{u}」" for u in outcome.understood), file=sys.stderr)
    show(args, outcome.results, lambda: "\n".join(map(_result_line, outcome.results)), empty="no photos found")
    if outcome.hidden:
        print(
            f"{outcome.hidden} weaker match{'es' if outcome.hidden != 1 else ''} hidden; --all shows them",
            file=sys.stderr,
        )
    return 0


def _exclusions_kept(argv: list[str]) -> list[str]:
    """`photod search 海边 -人 -grass`: after `search`, a word like -人 is an exclusion, not an option. It is
    passed on with a minus sign (U+2212), which argparse does not take for an option and the query parser reads
    as `-`. Options stay options: those with two dashes, -h, and -k with or without its number (-k5); a word
    starting with -k (-kite) is written `-- -kite` or quoted."""
    if "search" not in argv:
        return argv
    from photod.search.query import MINUS_SIGN

    at = argv.index("search")
    rest = argv[at + 1 :]
    if "--" in rest:  # after --, argparse takes everything as words already
        cut = rest.index("--")
        return argv[: at + 1] + [_as_word(a, MINUS_SIGN) for a in rest[:cut]] + rest[cut:]
    return argv[: at + 1] + [_as_word(a, MINUS_SIGN) for a in rest]


def _as_word(arg: str, minus: str) -> str:
    if not arg.startswith("-") or arg == "-":
        return arg
    if set(arg) == {"-"}:
        return minus + arg[1:]
    if arg.startswith("--") or arg == "-h" or re.fullmatch(r"-k\d*", arg):
        return arg
    return minus + arg[1:]


def _result_line(r: dict[str, Any]) -> str:
    score = f"{r['score']:.3f}  " if r.get("score") is not None else ""
    date = (r.get("taken_at") or "")[:10]
    offline = "  [offline]" if not r.get("online", True) else ""
    from photod.search.results import reasons, shown_path, video_label

    why = [f"「{reason}」" for reason in reasons(r) if not reason.startswith("相似度")]  # the score leads the line
    if r.get("below_cutoff"):
        why.append("「较弱」")
    video = f"  {video_label(r)}" if r.get("kind") == "video" else ""
    return f"{score}{shown_path(r)}{video}  {date}{offline}" + (f"  {''.join(why)}" if why else "")


# ---- models ------------------------------------------------------------------------------------------


def _arch_names() -> tuple[str, ...]:
    from photod.model.archs import CONFIGS

    return tuple(CONFIGS)


def _precisions() -> tuple[str, ...]:
    from photod.model.bundle import PRECISIONS

    return PRECISIONS


def _model_sources() -> tuple[str, ...]:
    from photod.finetune.modelhub import SOURCES

    return SOURCES


group("model", "Chinese-CLIP model bundles")


def _onnx_files(files: list[str]) -> bool:
    """Whether `photod model import` was given ONNX towers (or their folder) rather than a checkpoint."""
    return any(f.lower().endswith(".onnx") or Path(f).is_dir() for f in files)


@command(
    "model import",
    "import Chinese-CLIP's ONNX files (no torch needed) or a checkpoint (.pt, needs the finetune extra) as a bundle",
    option(
        "files",
        nargs="+",
        metavar="FILE",
        help="the .img. and .txt. ONNX files of Chinese-CLIP's deploy script (or one of them, or "
        "their folder), or a checkpoint .pt",
    ),
    option("--arch", choices=_arch_names, exclusive="architecture"),
    option("--vision-config", metavar="FILE", help="cn_clip vision model config (JSON)", exclusive="architecture"),
    option("--text-config", metavar="FILE", help="cn_clip text model config (JSON)"),
    option("--precision", choices=_precisions, default="int8", help="int8 (default) is fastest on a CPU"),
    option("--name", help="bundle name (default: from the architecture and precision)"),
    option("--no-activate", action="store_true", help="install without switching to it"),
    option("--replace", action="store_true", help="overwrite a bundle of the same name"),
    option(
        "--keep-checkpoint",
        action="store_true",
        help="keep the PyTorch weights in the bundle, so `photod finetune` can start from it",
    ),
)
def cmd_model_import(args: argparse.Namespace, cfg: Config) -> int:
    if _onnx_files(args.files):
        from photod.model.onnx_import import import_onnx

        if args.vision_config or args.keep_checkpoint:
            raise PhotodError(
                "--vision-config, --text-config and --keep-checkpoint are for checkpoints (.pt)",
                "ONNX files need none of them: the architecture is read from the graphs",
            )
        bundle = import_onnx(
            args.files,
            cfg.data_dir,
            arch=args.arch,
            precision=args.precision,
            name=args.name,
            activate=not args.no_activate,
            replace=args.replace,
        )
        print(bundle.name)
        return 0
    from photod.finetune import modelhub

    if len(args.files) != 1:
        raise PhotodError(
            f"a checkpoint import takes one .pt file, got {len(args.files)} files",
            "give one checkpoint, or the two .onnx files of Chinese-CLIP's deploy script",
        )
    if bool(args.vision_config) != bool(args.text_config):
        raise PhotodError("--vision-config and --text-config go together", "give both JSON files, or --arch")
    bundle = modelhub.import_file(
        args.files[0],
        cfg.data_dir,
        arch=args.arch,
        vision_config=args.vision_config,
        text_config=args.text_config,
        precision=args.precision,
        name=args.name,
        activate=not args.no_activate,
        replace=args.replace,
        keep_checkpoint=args.keep_checkpoint,
    )
    print(bundle.name)
    return 0


@command(
    "model pull",
    "download an official checkpoint and import it",
    option("name", help="e.g. ViT-B-16, RN50, ViT-L-14"),
    option("--source", choices=_model_sources, default="huggingface"),
    option("--precision", choices=_precisions, default="int8"),
)
def cmd_model_pull(args: argparse.Namespace, cfg: Config) -> int:
    from photod.finetune import modelhub

    bundle = modelhub.pull(args.name, cfg.data_dir, source=args.source, precision=args.precision)
    print(bundle.name)
    return 0


@command("model list", "installed bundles", JSON)
def cmd_model_list(args: argparse.Namespace, cfg: Config) -> int:
    from photod.model.registry import active_name, list_bundles

    active = active_name(cfg.data_dir)
    bundles = list_bundles(cfg.data_dir)
    rows = [
        {
            "name": b.name,
            "arch": b.arch,
            "precision": b.precision,
            "embed_dim": b.embed_dim,
            "image_id": b.image_id,
            "model_id": b.model_id,
            "active": b.name == active,
        }
        for b in bundles
    ]
    return show(
        args,
        rows,
        lambda: "\n".join(
            f"{'*' if b.name == active else ' '} {b.name}  {b.arch} {b.precision}, {b.embed_dim}-d, {b.image_size}px"
            for b in bundles
        ),
        empty="no models installed: `photod model pull ViT-B-16`, `photod model import FOLDER` (Chinese-CLIP's ONNX "
        "files) or `photod model import FILE.pt --arch ViT-B-16`",
    )


@command("model use", "switch to an installed bundle", option("name"))
def cmd_model_use(args: argparse.Namespace, cfg: Config) -> int:
    from photod.model.registry import use_bundle

    bundle = use_bundle(cfg.data_dir, args.name)
    print(
        f"using {bundle.name}; a running daemon switches to it within seconds "
        "(the old index keeps serving until the new one is complete)"
    )
    return 0


@command(
    "model remove",
    "delete an installed bundle",
    option("name"),
    option("--force", action="store_true", help="even the active one"),
)
def cmd_model_remove(args: argparse.Namespace, cfg: Config) -> int:
    from photod.service.models import remove_model

    with open_catalog(cfg) as cat:
        dropped = remove_model(cat, cfg.data_dir, args.name, force=args.force)
    print(f"removed {args.name}" + (f" and the {dropped} photo vectors of its image model" if dropped else ""))
    return 0


# ---- labels, datasets and finetuning ------------------------------------------------------------------


group("label", "captions that teach the model your words")


@command(
    "label add",
    "caption a photo",
    option("photo", help="photo id or path"),
    option("text", help='e.g. "小白在沙发上睡觉"'),
)
def cmd_label_add(args: argparse.Namespace, cfg: Config) -> int:
    from photod.labels.captions import add_label

    with open_catalog(cfg) as cat:
        caption_id = add_label(cat, args.photo, args.text)
    print(f"caption {caption_id} added")
    return 0


@command(
    "label list",
    "captions, with their photos",
    option("photo", nargs="?", help="only this photo (id or path)"),
    option("--source", choices=["user", "import", "folder", "feedback"]),
    JSON,
)
def cmd_label_list(args: argparse.Namespace, cfg: Config) -> int:
    from photod.labels.captions import list_labels

    with open_catalog(cfg) as cat:
        rows = list_labels(cat, args.photo, args.source)
    return show(
        args,
        rows,
        lambda: "\n".join(f"{r['id']:>5}  {r['text']}  ({r['source']})  {r['path']}" for r in rows),
        empty="no captions yet: `photod label add PHOTO TEXT`, the TUI, or `photod label import FILE`",
        default=str,
    )


@command("label remove", "delete a caption by its id", option("caption_id", type=int))
def cmd_label_remove(args: argparse.Namespace, cfg: Config) -> int:
    from photod.labels.captions import remove_label

    with open_catalog(cfg) as cat:
        row = remove_label(cat, args.caption_id)
    print(f"removed caption {row['id']}: {row['text']}")
    return 0


@command(
    "label import",
    "import captions: Chinese-CLIP jsonl, Flickr8k-CN json, CSV, or folder names",
    option("file", nargs="?", help="the label file (omit with --folders)"),
    option("--format", choices=["cnclip", "flickr8k", "csv"], help="default: guessed from the file name"),
    option("--base", metavar="DIR", help="folder that relative paths in the file are relative to"),
    option("--images", metavar="TSV", help="Chinese-CLIP *_imgs.tsv matching the jsonl's image ids"),
    option("--skip-unmatched", action="store_true", help="skip captions of photos not in the catalog"),
    option("--folders", action="store_true", help="use folder names as weak captions"),
    option("--root", help="with --folders: only this root"),
)
def cmd_label_import(args: argparse.Namespace, cfg: Config) -> int:
    from photod.labels.imports import import_folder_labels, import_labels

    with open_catalog(cfg) as cat:
        if args.folders:
            report = import_folder_labels(cat, args.root)
        elif not args.file:
            raise PhotodError("give a label file, or --folders", "see `photod label import --help`")
        else:
            report = import_labels(
                cat,
                args.file,
                args.format,
                base=args.base,
                images=args.images,
                unmatched="skip" if args.skip_unmatched else "error",
                data_dir=cfg.data_dir,
            )
    print(
        f"imported {report.added} captions for {report.photos} photos ({report.duplicates} already there, "
        f"{report.unmatched} unmatched)"
    )
    return 0


group("dataset", "training data")


@command(
    "dataset export",
    "write the captioned photos as one Chinese-CLIP dataset file, to train elsewhere",
    option("out", help="output file (.tar)"),
    option("--valid-fraction", type=float, default=0.2),
    option("--seed", type=int, default=0),
)
def cmd_dataset_export(args: argparse.Namespace, cfg: Config) -> int:
    from photod.finetune.dataset import export_dataset

    out = export_dataset(cfg.data_dir, args.out, valid_fraction=args.valid_fraction, seed=args.seed)
    print(
        f"wrote {out}; train with `photod finetune --dataset {out.name}` on the GPU box, then copy the new "
        "bundle back and `photod model use` it"
    )
    return 0


@command(
    "finetune",
    "teach the model your captions (torch + cn_clip; a GPU is much faster)",
    option(
        "--mode",
        choices=["lit", "full"],
        default="lit",
        help="lit (default): train the text tower only, nothing is re-encoded; full: both towers",
    ),
    option("--base", help="bundle name, bundle folder or .pt checkpoint (default: the active model)"),
    option("--arch", help="architecture of a .pt --base"),
    option("--dataset", metavar="FILE", help="an exported dataset file instead of this data dir's labels"),
    option("--epochs", type=int, default=10),
    option("--max-steps", type=int),
    option("--lr", type=float, help="learning rate (default 5e-5)"),
    option("--batch-size", type=int, default=32),
    option("--accum-steps", type=int, default=1, help="gradient accumulation for small GPUs"),
    # photod.finetune.train.PRECISIONS, written out: that module imports torch, and `--help` must not
    option("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto"),
    option("--grad-checkpointing", action="store_true"),
    option("--seed", type=int, default=0),
    option("--name", help="name of the new bundle"),
    option("--force", action="store_true", help="install even if held-out recall got worse"),
    option("--no-install", action="store_true", help="export the bundle but do not switch to it"),
    option("--fresh", action="store_true", help="do not resume an interrupted run"),
)
def cmd_finetune(args: argparse.Namespace, cfg: Config) -> int:
    from photod.finetune.modelhub import require_finetune

    require_finetune()
    from photod.finetune.run import finetune

    result = finetune(
        cfg.data_dir,
        base=args.base,
        arch=args.arch,
        dataset=args.dataset,
        mode=args.mode,
        epochs=args.epochs,
        max_steps=args.max_steps,
        lr=args.lr,
        batch_size=args.batch_size,
        accum_steps=args.accum_steps,
        precision=args.precision,
        grad_checkpointing=args.grad_checkpointing,
        seed=args.seed,
        name=args.name,
        force=args.force,
        install=not args.no_install,
        resume=not args.fresh,
    )
    print(result.table())
    print(f"report: {result.report}")
    if result.installed:
        extra = (
            " (image tower changed: the daemon re-encodes from the stage; the old index serves meanwhile)"
            if result.reencode
            else " (text tower only: nothing is re-encoded)"
        )
        print(f"installed {result.bundle.name}{extra}")
    elif result.bundle is not None:
        why = "as asked" if result.improved else "held-out recall did not improve (use --force to install anyway)"
        print(f"not installed: {why}; bundle at {result.bundle.path}")
    return 0


# ---- the service -------------------------------------------------------------------------------------

group("service", "systemd unit")


@command(
    "service install",
    "write the systemd unit",
    option("--user", action="store_true", help="a user unit (~/.config/systemd/user)"),
    option("--print", action="store_true", help="print the unit instead of writing it"),
    option("--output", metavar="PATH", help="write the unit here instead"),
)
def cmd_service_install(args: argparse.Namespace, cfg: Config) -> int:
    from photod.service.systemd import install_unit, photod_command, render_unit

    config_path = cfg.source.resolve() if cfg.source else None
    if args.print:
        print(render_unit(cfg, photod_command(), args.user, config_path))
        return 0
    target = install_unit(cfg, args.user, config_path, Path(args.output) if args.output else None)
    scope = "--user " if args.user else ""
    print(f"wrote {target}\nstart it with: systemctl {scope}daemon-reload && systemctl {scope}enable --now photod")
    return 0


if __name__ == "__main__":
    sys.exit(main())
