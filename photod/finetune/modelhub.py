"""Getting official Chinese-CLIP models: `photod model pull` and `photod model import`.

Downloads go through cn_clip's own download code (Hugging Face via huggingface_hub, or ModelScope via
modelscope) into `<data_dir>/downloads`, then through the same import as a local file. Both need the
`finetune` extra (torch, cn_clip); this module imports neither until asked, so the daemon never pays for it.
Where they are missing (a Raspberry Pi), `pull` says which ONNX files to fetch instead and how to import
them (photod.model.onnx_import needs no torch).

Model downloads are blocked or slow in some places, so reachability is checked first with a short
timeout: offline, `pull` fails in seconds with the source it tried and how to import a file instead.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from photod.deadline import run_with_deadline
from photod.errors import ModelError
from photod.model import archs
from photod.model.bundle import Bundle

log = logging.getLogger(__name__)

SOURCES = ("huggingface", "modelscope")
CONNECT_TIMEOUT = 5.0
FINETUNE_HINT = "install the model tools with `pip install 'photod[finetune]'` (torch, cn_clip)"


def _missing_finetune() -> str | None:
    """Why torch or cn_clip cannot be imported, or None when both can."""
    for module in ("torch", "cn_clip"):
        try:
            __import__(module)
        except ImportError as exc:
            return f"{module}, which is not installed ({exc})"
    return None


def require_finetune() -> None:
    """Raise ModelError naming the missing package when torch or cn_clip cannot be imported."""
    missing = _missing_finetune()
    if missing:
        raise ModelError(f"importing a checkpoint needs {missing}", FINETUNE_HINT + "; " + onnx_hint("ViT-B-16"))


def onnx_hint(name: str) -> str:
    """What to download and run instead of `pull` where torch is not installed (a Raspberry Pi)."""
    stem = name.lower() if name in archs.CONFIGS else "vit-b-16"
    return (
        f"without torch, import Chinese-CLIP's ONNX files: put {stem}.img.fp32.onnx and {stem}.txt.fp32.onnx "
        "(and the .onnx.data or .onnx.extra_file beside each, where there is one) in a folder and run "
        "`photod model import FOLDER`. Chinese-CLIP's deploy script (cn_clip/deploy/pytorch_to_onnx.py) "
        "writes them on any machine with torch; MT Photos publishes vit-b-16.img.fp32.onnx and "
        "vit-b-16.txt.fp32.onnx"
    )


def source_host(source: str) -> tuple[str, int]:
    """(host, port) that a download from `source` connects to, honouring the endpoint overrides that
    huggingface_hub (HF_ENDPOINT, e.g. a mirror) and modelscope (MODELSCOPE_DOMAIN) read."""
    if source == "huggingface":
        url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
        return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    if source == "modelscope":
        domain = os.environ.get("MODELSCOPE_DOMAIN") or "www.modelscope.cn"
        url = urlparse(domain if "://" in domain else f"https://{domain}")
        return url.hostname or "www.modelscope.cn", url.port or (80 if url.scheme == "http" else 443)
    raise ModelError(f"unknown model source {source!r}", f"use one of {', '.join(SOURCES)}")


def _proxy_for(host: str) -> tuple[str, int] | None:
    # Behind a proxy the machine may resolve nothing itself; then reaching the proxy is what counts.
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    if any(host.endswith(d.strip().lstrip(".")) for d in no_proxy.split(",") if d.strip()):
        return None
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if not proxy:
        return None
    url = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    return (url.hostname, url.port or 8080) if url.hostname else None


def check_reachable(host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """None if a TCP connection to host:port (or the HTTPS proxy) opens within `timeout`, else why not.

    Runs in a thread so that a hanging DNS lookup, which no socket timeout bounds, cannot stall us.
    """
    target = _proxy_for(host) or (host, port)

    def attempt() -> str | None:
        try:
            with socket.create_connection(target, timeout=timeout):
                return None
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"

    trying = run_with_deadline(attempt, timeout + 0.5, "photod-reachability")
    return trying.result(default=f"no answer within {timeout:g} s")


def _arch_names() -> dict[str, str]:
    from cn_clip.clip import utils as cn_utils

    return {name: filename for name, (_, filename) in cn_utils._MODELS.items()}


def pull(
    name: str,
    data_dir: str | os.PathLike,
    source: str = "huggingface",
    precision: str = "int8",
    *,
    timeout: float = CONNECT_TIMEOUT,
    activate: bool = True,
    bundle_name: str | None = None,
) -> Bundle:
    """Download the official checkpoint `name` (RN50, ViT-B-16, ...) from `source` and import it.

    Offline or blocked: ModelError at once naming the source and host tried, and how to import a local
    file instead. Missing torch/cn_clip: ModelError saying which extra to install.
    """
    missing = _missing_finetune()
    if missing:
        if name not in archs.CONFIGS:
            raise ModelError(
                f"there is no official Chinese-CLIP model named {name!r}", f"use one of {', '.join(archs.CONFIGS)}"
            )
        raise ModelError(
            f"`photod model pull` downloads PyTorch checkpoints and needs {missing}",
            onnx_hint(name) + "; or install the model tools with `pip install 'photod[finetune]'`",
        )
    host, port = source_host(source)
    files = _arch_names()
    if name not in files:
        raise ModelError(f"there is no official Chinese-CLIP model named {name!r}", f"use one of {', '.join(files)}")
    local_hint = (
        f"download {files[name]} on a machine with network access (Hugging Face OFA-Sys or "
        f"ModelScope AI-ModelScope), copy it here and run "
        f"`photod model import {files[name]} --arch {name}`"
    )
    problem = check_reachable(host, port, timeout)
    if problem:
        other = [s for s in SOURCES if s != source]
        raise ModelError(
            f"cannot reach {host}:{port} to download {name} from {source} ({problem})",
            local_hint + f", or try --source {other[0]}",
        )
    downloads = Path(data_dir) / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    from cn_clip.clip import utils as cn_utils

    log.info("downloading %s (%s) from %s into %s", name, files[name], source, downloads)
    try:
        checkpoint = cn_utils._download(name, str(downloads), use_modelscope=(source == "modelscope"))
    except Exception as exc:  # noqa: BLE001 - network, HTTP and missing-client errors all end the same way
        raise ModelError(
            f"downloading {name} from {source} failed: {type(exc).__name__}: {str(exc)[:300]}", local_hint
        ) from None
    # The weights go into the bundle (checkpoint.pt), so `photod finetune` can start from it on any machine the
    # data dir is copied to; the download itself is then dropped, leaving one copy on disk.
    bundle = import_file(
        checkpoint,
        data_dir,
        arch=name,
        precision=precision,
        name=bundle_name,
        activate=activate,
        source=f"{source}:{name}",
        keep_checkpoint=True,
    )
    Path(checkpoint).unlink(missing_ok=True)
    return bundle


def import_file(checkpoint: str | os.PathLike, data_dir: str | os.PathLike, **options: Any) -> Bundle:
    """`photod model import`: photod.finetune.export.import_checkpoint behind the check for the finetune extra.

    `options` are import_checkpoint's keywords (arch, vision_config, text_config, precision, name,
    activate, replace, source, keep_checkpoint).
    """
    require_finetune()
    from photod.finetune.export import import_checkpoint

    return import_checkpoint(Path(checkpoint), Path(data_dir), **options)
