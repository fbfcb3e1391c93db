"""Encoder throughput: photod's ONNX bundles (int8, fp32) against cn_clip's PyTorch fp32 on the same images,
ingest end to end (stage JPEG -> decode -> model -> stored vector -> index) against the encoder alone, and
int8 against fp32 on a synthetic library (embedding cosine, image-to-image top-10 overlap).

    python benchmarks/bench_encode.py compare [--archs ViT-B-16,RN50] [--batch-sizes 1,8,32] [--images 32]
                                              [--ingest 320] [--quality 2000] [--json FILE]
    python benchmarks/bench_encode.py bundle BUNDLE_DIR [--batch-sizes 1,8,32] [--images 64] [--ingest 256]

`compare` uses full-size architectures with random weights (benchmarks/common.py; bundles cached under
.bench/models, built on first use). Random weights run exactly as fast as real ones. PyTorch runs with
torch.set_num_threads(THREADS) under torch.inference_mode; ONNX Runtime with photod's ImageEncoder on the
same number of threads; all engines get the very same preprocessed arrays. The issue's targets on a 2-core
CPU: int8 ViT-B-16 at least 3.5x PyTorch fp32; ingest at least 0.75x of the encoder running alone.

`measure()` and `measure_ingest()` are the reusable parts; `bundle` runs them on any bundle folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from photod.config import IndexConfig, StageConfig, WorkersConfig  # noqa: E402
from photod.model.bundle import Bundle  # noqa: E402
from photod.model.encoder import (  # noqa: E402
    ImageEncoder,
    TextEncoder,
    normalise,
    open_session,
    runs_rowwise,
)

QUALITY = REPO / ".bench" / "quality"


def sample_images(n: int, size: int = StageConfig.size) -> list:
    from tests.support.onnxkit import picture

    return [picture(i, size) for i in range(n)]


def measure(
    bundle_dir: str | Path,
    batch_sizes: list[int] = (1, 8, 32),
    n_images: int = 64,
    threads: int = 2,
    images: list | None = None,
) -> dict:
    """Images per second of the bundle's image tower at each batch size (preprocessing excluded, as the
    indexer decodes ahead of the model), and the text tower's p50 latency for one query."""
    bundle = Bundle.load(bundle_dir)
    images = images if images is not None else sample_images(n_images)
    enc = ImageEncoder(bundle, threads=threads)
    pixels = enc.preprocess(images)
    t0 = time.perf_counter()
    enc.preprocess(images)
    preprocess_s = time.perf_counter() - t0
    out = {
        "bundle": str(bundle_dir),
        "arch": bundle.arch,
        "precision": bundle.precision,
        "providers": enc.providers,
        "threads": threads,
        "images": len(images),
        "preprocess_images_per_s": round(len(images) / preprocess_s, 1),
        "image": {},
    }
    for bs in batch_sizes:
        enc.encode_array(pixels[:bs])  # warm up: first runs allocate
        t0 = time.perf_counter()
        for start in range(0, len(pixels), bs):
            enc.encode_array(pixels[start : start + bs])
        elapsed = time.perf_counter() - t0
        out["image"][bs] = {
            "images_per_s": round(len(pixels) / elapsed, 2),
            "ms_per_batch": round(1000 * elapsed / -(-len(pixels) // bs), 2),
        }
    text = TextEncoder(bundle, threads=threads)
    text.encode(["预热"])
    times = []
    for i in range(30):
        t0 = time.perf_counter()
        text.encode([f"海边的日落 {i}"])
        times.append(time.perf_counter() - t0)
    out["text_query_p50_ms"] = round(1000 * float(np.median(times)), 2)
    return out


def measure_ingest(
    bundle_dir: str | Path,
    n_images: int = 256,
    batch_size: int = 16,
    threads: int = 2,
    decode_workers: int = 2,
    images: list | None = None,
    work_dir: Path | None = None,
) -> dict:
    """Photos per second from staged JPEGs to stored vectors and index, against the encoder alone on the
    same photos at the same batch size."""
    from photod.index.indexer import Indexer
    from photod.index.vectorindex import VectorIndex
    from photod.store.catalog import Catalog
    from photod.store.stage import Stage
    from tests.support.onnxkit import add_photos, jpeg_bytes

    bundle = Bundle.load(bundle_dir)
    images = images[:n_images] if images is not None else sample_images(n_images)
    n_images = len(images)
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)  # a disk folder: the catalog's fsyncs cost what they cost
    with tempfile.TemporaryDirectory(prefix="photod-bench-", dir=work_dir) as tmp:
        data_dir = Path(tmp) / "data"
        with Catalog.in_data_dir(data_dir) as cat, Stage(data_dir) as stage:
            ids = add_photos(cat, Path(tmp) / "root", n_images)
            stage.put_many({pid: jpeg_bytes(img) for pid, img in zip(ids, images)})
            index = VectorIndex(data_dir, bundle.image_id, IndexConfig(kind="exact"))
            workers = WorkersConfig(batch_size=batch_size, encode_threads=threads, decode=decode_workers)
            indexer = Indexer(cat, stage, bundle, index, workers)
            pixels = indexer.encoder.preprocess([stage.get_image(i) for i in ids])
            indexer.encoder.encode_array(pixels[:batch_size])

            def alone_pass() -> float:
                t0 = time.perf_counter()
                for start in range(0, n_images, batch_size):
                    indexer.encoder.encode_array(pixels[start : start + batch_size])
                return time.perf_counter() - t0

            # The encoder alone is timed before and after the ingest and averaged: on a shared machine the
            # load drifts, and bracketing keeps the ratio fair.
            before = alone_pass()
            t0 = time.perf_counter()
            done = indexer.run_once()
            ingest_s = time.perf_counter() - t0
            alone_s = (before + alone_pass()) / 2
            stored = cat.scalar("SELECT count(*) FROM vectors")
            assert done == n_images == stored == len(index), (done, n_images, stored, len(index))
    alone, ingest = n_images / alone_s, done / ingest_s
    return {
        "images": n_images,
        "batch_size": batch_size,
        "decode_workers": decode_workers,
        "encoder_alone_per_s": round(alone, 2),
        "ingest_per_s": round(ingest, 2),
        "ratio": round(ingest / alone, 3),
        "model_wait_s": round(indexer.stats["wait_seconds"], 2),
        "ingest_s": round(ingest_s, 1),
    }


# ---- photod ONNX against cn_clip PyTorch -----------------------------------------------------------


def _rate(run, pixels: np.ndarray, bs: int, rounds: int) -> float:
    """Images per second of `run` over `pixels` in batches of `bs`: the best of `rounds` passes (the machine is
    shared: the best pass is the one least disturbed), after one warm-up batch."""
    run(pixels[:bs])
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for start in range(0, len(pixels), bs):
            run(pixels[start : start + bs])
        best = max(best, len(pixels) / (time.perf_counter() - t0))
    return best


def batched(graph: Path, threads: int):
    """A graph run as one batch per call on one `threads`-thread session (how photod ran int8 towers before
    their vectors were made independent of the batch)."""
    session = open_session(graph, threads)
    name = session.get_inputs()[0].name
    return lambda batch: normalise(session.run(None, {name: batch})[0])


def compare_arch(
    arch: str,
    batch_sizes: list[int],
    pixels_for,
    threads: int = 2,
    rounds: int = 2,
    extra: dict[str, Path] | None = None,
) -> list[dict]:
    """Images/s of photod int8 and fp32 ONNX and of cn_clip's PyTorch fp32 for one arch, batch size by batch
    size (engines interleaved, so a burst of load elsewhere hits all three alike). `extra` adds more bundles
    of the same arch (label -> bundle folder), e.g. one exported another way, to the same interleaved run."""
    import torch

    from benchmarks.common import clip_model, ensure_bundle

    torch.set_num_threads(threads)
    model, vision, text = clip_model(arch)
    engines = {}
    for precision in ("int8", "fp32"):
        bundle = ensure_bundle(arch, precision, (model, vision, text))
        engines[f"photod {precision}"] = ImageEncoder(bundle, threads=threads).encode_array
        if runs_rowwise(precision):  # what batch-independent vectors cost: the same graph run batched
            engines[f"photod {precision} batched"] = batched(bundle.image_path, threads)
    for label, folder in (extra or {}).items():
        engines[label] = (
            batched(Bundle.load(folder).image_path, threads)
            if label.endswith(" batched")
            else ImageEncoder(Bundle.load(folder), threads=threads).encode_array
        )
    size = int(vision["image_resolution"])
    pixels = pixels_for(size)

    def pytorch(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model.encode_image(torch.from_numpy(batch))
            return (out / out.norm(dim=-1, keepdim=True)).numpy()

    engines["PyTorch fp32"] = pytorch
    rows = []
    for bs in batch_sizes:
        rates = dict.fromkeys(engines, 0.0)
        for _ in range(rounds):  # engines interleaved pass by pass: a burst of load elsewhere hits all alike
            for name, run in engines.items():
                rates[name] = max(rates[name], _rate(run, pixels, bs, 1))
        base = rates["PyTorch fp32"]
        for name, rate in rates.items():
            rows.append(
                {
                    "arch": arch,
                    "engine": name,
                    "batch": bs,
                    "images_per_s": round(rate, 2),
                    "vs_pytorch": round(rate / base, 2),
                }
            )
            print(f"{arch:<9} {name:<20} batch {bs:>2}: {rate:7.2f} images/s  {rate / base:5.2f}x", flush=True)
    return rows


def quality(n: int, batch: int = 32, threads: int = 2, arch: str = "ViT-B-16") -> dict:
    """int8 against fp32 embeddings of the same n synthetic photos: per-image cosine, and the overlap of each
    image's 10 nearest neighbours (itself excluded) in the two embedding spaces. Embeddings are cached."""
    from benchmarks.common import ensure_bundle, pictures

    QUALITY.mkdir(parents=True, exist_ok=True)
    embeddings, seconds = {}, {}
    for precision in ("int8", "fp32"):
        bundle = ensure_bundle(arch, precision)
        cache = QUALITY / f"{arch.lower()}-{precision}-{bundle.image_id[:12]}-{n}.npy"
        if cache.exists():
            embeddings[precision] = np.load(cache)
            continue
        enc = ImageEncoder(bundle, threads=threads)
        parts, t0 = [], time.perf_counter()
        for start in range(0, n, batch):
            parts.append(enc.encode(pictures(min(batch, n - start), start=start)))
        seconds[precision] = round(time.perf_counter() - t0, 1)
        embeddings[precision] = np.vstack(parts)
        np.save(cache, embeddings[precision])
        print(f"encoded {n} pictures with {arch} {precision} in {seconds[precision]} s", flush=True)
    a, b = embeddings["int8"], embeddings["fp32"]
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    def neighbours(x: np.ndarray) -> np.ndarray:
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :10]

    na, nb = neighbours(a), neighbours(b)
    overlap = np.array([len(set(r) & set(t)) / 10 for r, t in zip(na, nb)])
    return {
        "arch": arch,
        "images": n,
        "mean_cosine": round(float(cos.mean()), 5),
        "min_cosine": round(float(cos.min()), 5),
        "p01_cosine": round(float(np.percentile(cos, 1)), 5),
        "top10_overlap": round(float(overlap.mean()), 4),
        "top1_same": round(float((na[:, 0] == nb[:, 0]).mean()), 4),
        "encode_s": seconds,
    }


QUANT_VARIANTS = {
    # name: photod.model.convert.quantize_int8 keyword arguments (photod's export: "per-channel, reduce_range")
    "per-channel, reduce_range": {"per_channel": True, "reduce_range": True},
    "per-channel": {"per_channel": True, "reduce_range": False},
    "per-tensor, reduce_range": {"per_channel": False, "reduce_range": True},
    "per-tensor": {"per_channel": False, "reduce_range": False},
    "per-channel, reduce_range, u8 weights": {"per_channel": True, "reduce_range": True, "signed_weights": False},
}


def static_qdq(fp32_graph: Path, out: Path, pixels: np.ndarray) -> None:
    """ONNX Runtime's static quantization (QDQ, u8 activations with scales calibrated by min/max on `pixels`,
    per-channel s8 weights): fixed activation scales would make vectors batch-independent without running
    one photo per call. The fused Attention op has no QDQ form, so attention stays fp32."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from photod.model.convert import constants_to_initializers

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter(pixels)

        def get_next(self):
            row = next(self.rows, None)
            return None if row is None else {"image": row[None]}

    model = onnx.load(str(fp32_graph))
    constants_to_initializers(model)
    staged = out.with_name("static-source.onnx")
    onnx.save(model, str(staged))
    quantize_static(
        str(staged),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
    )
    staged.unlink()


def quant_variants(
    arch: str, batch_sizes: list[int], n_images: int, threads: int, rounds: int, variants: list[str]
) -> list[dict]:
    """Images/s and cosine to fp32 of the image tower under several int8 dynamic-quantization settings and
    ONNX Runtime session settings, from the cached fp32 bundle's graph (what to change if int8 is slow)."""
    import onnxruntime as ort

    from benchmarks.common import ensure_bundle, pictures
    from photod.model.convert import quantize_int8
    from photod.model.preprocess import preprocess_batch

    fp32 = ensure_bundle(arch, "fp32")
    pixels = preprocess_batch(pictures(n_images), fp32.image_size, fp32.mean, fp32.std)
    folder = REPO / ".bench" / "quant" / arch.lower()
    folder.mkdir(parents=True, exist_ok=True)

    def session(path: Path, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL, spin: bool = True, rowwise: bool = False):
        if rowwise:  # photod's way for int8 (photod.model.encoder): one photo per single-thread call
            one, pool = open_session(path, 1), ThreadPoolExecutor(threads)
            return lambda batch: np.concatenate(
                list(pool.map(lambda row: one.run(None, {"image": row[None]})[0], batch))
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = level
        opts.log_severity_level = 3
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return lambda batch: sess.run(None, {name: batch})[0]

    reference = normalise(session(fp32.image_path)(pixels))
    graphs = {"fp32": (fp32.image_path, {})}
    for name in variants:
        if name in ("fp32", "ENABLE_BASIC", "no spinning", "one photo per call", "static QDQ"):
            continue
        path = folder / (name.replace(", ", "-").replace(" ", "_") + ".onnx")
        if not path.exists():
            quantize_int8(fp32.image_path, path, "image", **QUANT_VARIANTS[name])
        graphs[name] = (path, {})
    if "static QDQ" in variants:
        path = folder / "static-qdq.onnx"
        if not path.exists():
            static_qdq(fp32.image_path, path, pixels)
        graphs[f"static QDQ, per-channel, calibrated on {len(pixels)} pictures"] = (path, {})
    base_int8 = graphs.get("per-channel, reduce_range", (None,))[0]
    if base_int8 is not None:
        if "ENABLE_BASIC" in variants:
            graphs["per-channel, reduce_range, ORT_ENABLE_BASIC"] = (
                base_int8,
                {"level": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC},
            )
        if "no spinning" in variants:
            graphs["per-channel, reduce_range, no spinning"] = (base_int8, {"spin": False})
        if "one photo per call" in variants:
            graphs["per-channel, reduce_range, one photo per call"] = (base_int8, {"rowwise": True})
    rows = []
    runs = {name: session(path, **kw) for name, (path, kw) in graphs.items()}
    cos = {name: (normalise(run(pixels)) * reference).sum(axis=1) for name, run in runs.items()}
    for bs in batch_sizes:
        rates = dict.fromkeys(runs, 0.0)
        for _ in range(rounds):  # variants interleaved pass by pass: a burst of load elsewhere hits all alike
            for name, run in runs.items():
                rates[name] = max(rates[name], _rate(run, pixels, bs, 1))
        for name, rate in rates.items():
            rows.append(
                {
                    "arch": arch,
                    "variant": name,
                    "batch": bs,
                    "images_per_s": round(rate, 2),
                    "min_cosine_vs_fp32": round(float(cos[name].min()), 5),
                }
            )
            print(
                f"{arch} {name:<45} batch {bs:>2}: {rate:6.2f} images/s  min cosine {cos[name].min():.5f}", flush=True
            )
    return rows


def gemm(threads: list[int], rounds: int = 5) -> list[dict]:
    """GMAC/s of ONNX Runtime's fp32 MatMul and int8 DynamicQuantizeMatMul (u8 activations, s8 weights, the
    kernel photod's int8 towers spend their time in) on ViT-B-16's MLP shape for 8 photos: the ceiling of
    int8 and fp32 encoding on this CPU (AVX2 alone, AVX-512 VNNI, AMX and ARM dot-product take other paths)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = 8 * 197, 768, 3072
    rng = np.random.default_rng(0)
    w = rng.standard_normal((k, n)).astype(np.float32)
    scale = (np.abs(w).max(axis=0) / 127).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    graphs = {
        "fp32 MatMul": ([helper.make_node("MatMul", ["x", "w"], ["y"])], [numpy_helper.from_array(w, "w")]),
        "int8 DynamicQuantizeMatMul": (
            [helper.make_node("DynamicQuantizeMatMul", ["x", "w", "s", "z"], ["y"], domain="com.microsoft")],
            [
                numpy_helper.from_array(np.round(w / scale).astype(np.int8), "w"),
                numpy_helper.from_array(scale, "s"),
                numpy_helper.from_array(np.zeros(n, np.int8), "z"),
            ],
        ),
    }
    rows = []
    for name, (nodes, inits) in graphs.items():
        graph = helper.make_graph(
            nodes,
            "gemm",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
            inits,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
        )
        for t in threads:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = t
            sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            sess.run(None, {"x": x})
            best = min(_timed(sess.run, None, {"x": x}) for _ in range(rounds))
            rows.append({"kernel": name, "threads": t, "gmac_per_s": round(m * k * n / best / 1e9, 1)})
            print(f"{name:<28} {t} threads: {rows[-1]['gmac_per_s']:6.1f} GMAC/s", flush=True)
    return rows


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def load_child(folder: Path, batched_run: bool, batch: int, threads: int) -> dict:
    """In a fresh process: the image tower's load time and the process's memory after loading it and after
    encoding one batch of `batch` pictures (the daemon's way, or `batched_run` as one batch per call)."""
    from benchmarks.common import pictures

    bundle = Bundle.load(folder)
    from photod.model.preprocess import preprocess_batch

    pixels = preprocess_batch(pictures(batch), bundle.image_size, bundle.mean, bundle.std)
    before = _status_kb("VmRSS")
    t0 = time.perf_counter()
    run = batched(bundle.image_path, threads) if batched_run else ImageEncoder(bundle, threads=threads).encode_array
    load_s = time.perf_counter() - t0
    loaded = _status_kb("VmRSS")
    t0 = time.perf_counter()
    run(pixels)
    first_s = time.perf_counter() - t0
    data = bundle.image_path.with_name(bundle.image_path.name + ".data")
    return {
        "bundle": str(folder),
        "batched": batched_run,
        "batch": batch,
        "image_onnx_mb": round(
            (bundle.image_path.stat().st_size + (data.stat().st_size if data.exists() else 0)) / 1e6, 1
        ),
        "load_s": round(load_s, 3),
        "first_batch_s": round(first_s, 2),
        "rss_before_mb": round(before / 1024, 1),
        "rss_loaded_mb": round(loaded / 1024, 1),
        "rss_after_batch_mb": round(_status_kb("VmRSS") / 1024, 1),
        "peak_mb": round(_status_kb("VmHWM") / 1024, 1),
    }


def load_report(specs: list[str], batch: int, threads: int, repeat: int) -> list[dict]:
    """load_child for each 'LABEL=DIR' (a LABEL ending in ' batched' runs one batch per call), each in its
    own process, `repeat` times (the fastest load kept)."""
    import subprocess

    rows = []
    for spec in specs:
        label, _, folder = spec.rpartition("=")
        label = label or folder
        runs = []
        for _ in range(repeat):
            cmd = [sys.executable, __file__, "load-child", folder, "--batch", str(batch), "--threads", str(threads)]
            cmd += ["--batched"] if label.endswith(" batched") else []
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        best = min(runs, key=lambda r: r["load_s"])
        best["label"] = label
        best["peak_mb"] = max(r["peak_mb"] for r in runs)
        rows.append(best)
        print(
            f"{label:<28} {best['image_onnx_mb']:7.1f} MB on disk  load {best['load_s']:.3f} s  RSS loaded"
            f" {best['rss_loaded_mb']:.0f} MB (from {best['rss_before_mb']:.0f})  peak after a batch of {batch}:"
            f" {best['peak_mb']:.0f} MB",
            flush=True,
        )
    return rows


def markdown(report: dict) -> str:
    """The figures as markdown tables."""
    out = []
    rows = report.get("throughput")
    if rows:
        engines = list(dict.fromkeys(r["engine"] for r in rows))
        out += [
            f"Image encoding, images/s ({report['threads']} threads; x = against PyTorch fp32 at the same batch;"
            f" {report.get('cpu', 'CPU not recorded')}; load {report['load_before'][0]:.1f}):",
            "",
            "| arch | batch | " + " | ".join(engines) + " |",
            "|---|---:|" + "---:|" * len(engines),
        ]
        for arch in dict.fromkeys(r["arch"] for r in rows):
            for bs in dict.fromkeys(r["batch"] for r in rows):
                cells = {r["engine"]: r for r in rows if r["arch"] == arch and r["batch"] == bs}
                out.append(
                    f"| {arch} | {bs} | "
                    + " | ".join(
                        f"{cells[e]['images_per_s']:.2f}"
                        + ("" if e == "PyTorch fp32" else f" ({cells[e]['vs_pytorch']:.2f}x)")
                        for e in engines
                    )
                    + " |"
                )
    ing = report.get("ingest")
    if ing:
        out += [
            "",
            f"Ingest end to end (staged JPEG -> decode -> model -> vector in the catalog -> index), "
            f"{ing['arch']} int8, {ing['images']} photos, batch {ing['batch_size']}:",
            "",
            "| encoder alone (images/s) | ingest (photos/s) | ratio | model waited (s) |",
            "|---:|---:|---:|---:|",
            f"| {ing['encoder_alone_per_s']:.2f} | {ing['ingest_per_s']:.2f} | {ing['ratio']:.3f} |"
            f" {ing['model_wait_s']:.2f} |",
        ]
    q = report.get("quality")
    if q:
        out += [
            "",
            f"int8 against fp32, {q['arch']}, {q['images']:,} synthetic pictures:",
            "",
            "| mean cosine | 1st percentile cosine | min cosine | top-10 neighbour overlap | same top-1 |",
            "|---:|---:|---:|---:|---:|",
            f"| {q['mean_cosine']:.5f} | {q['p01_cosine']:.5f} | {q['min_cosine']:.5f} | {q['top10_overlap']:.4f} |"
            f" {q['top1_same']:.4f} |",
        ]
    return "\n".join(out)


def run_compare(args: argparse.Namespace) -> dict:
    from benchmarks.common import cpu_summary, ensure_bundle, pictures

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "command": " ".join(sys.argv),
        "threads": args.threads,
        "cpu": cpu_summary(),
        "load_before": os.getloadavg(),
    }
    print(f"CPU: {report['cpu']}; load {report['load_before']}", flush=True)
    images = pictures(args.images)
    cache: dict[int, np.ndarray] = {}

    def pixels_for(size: int) -> np.ndarray:
        # photod's preprocessing (equal to cn_clip's within 1e-5): every engine gets these same arrays
        if size not in cache:
            from photod.model.preprocess import CLIP_MEAN, CLIP_STD, preprocess_batch

            cache[size] = preprocess_batch(images, size, CLIP_MEAN, CLIP_STD)
        return cache[size]

    if args.archs:
        report["throughput"] = []
        for arch in args.archs.split(","):
            extra = {
                label.split(":", 1)[1]: Path(folder)
                for label, _, folder in (item.partition("=") for item in args.extra if item.startswith(f"{arch}:"))
            }
            report["throughput"] += compare_arch(
                arch, [int(b) for b in args.batch_sizes.split(",")], pixels_for, args.threads, args.rounds, extra
            )
    if args.ingest:
        bundle = ensure_bundle("ViT-B-16", "int8")
        report["ingest"] = {
            "arch": "ViT-B-16",
            **measure_ingest(
                bundle.path,
                args.ingest,
                batch_size=args.ingest_batch,
                threads=args.threads,
                images=pictures(args.ingest),
                work_dir=REPO / ".bench" / "ingest",
            ),
        }
        r = report["ingest"]
        print(
            f"ingest {r['ingest_per_s']} photos/s vs encoder alone {r['encoder_alone_per_s']}/s: {r['ratio']}x",
            flush=True,
        )
    if args.quality:
        report["quality"] = quality(args.quality, threads=args.threads)
        print(f"int8 vs fp32: {report['quality']}", flush=True)
    report["load_after"] = os.getloadavg()
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    cmp_ = sub.add_parser("compare", help="photod ONNX int8/fp32 against cn_clip PyTorch fp32, ingest, quality")
    cmp_.add_argument("--archs", default="ViT-B-16,RN50", help="'' to skip the throughput table")
    cmp_.add_argument("--batch-sizes", default="1,8,32")
    cmp_.add_argument("--images", type=int, default=32, help="images per timed pass")
    cmp_.add_argument("--rounds", type=int, default=2, help="timed passes per engine and batch size (best kept)")
    cmp_.add_argument("--threads", type=int, default=2)
    cmp_.add_argument("--ingest", type=int, default=320, help="photos for the ingest run (0 to skip)")
    cmp_.add_argument("--ingest-batch", type=int, default=16)
    cmp_.add_argument("--quality", type=int, default=2000, help="pictures for int8 vs fp32 (0 to skip)")
    cmp_.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    cmp_.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="ARCH:LABEL=DIR",
        help="another bundle of ARCH to time in the same run, e.g. "
        "'ViT-B-16:photod int8 old=.bench/models-unfused/vit-b-16-int8' (repeatable)",
    )
    qv = sub.add_parser("quant", help="int8 quantization and session settings against fp32 (image tower)")
    qv.add_argument("--arch", default="ViT-B-16")
    qv.add_argument("--batch-sizes", default="8")
    qv.add_argument("--images", type=int, default=16)
    qv.add_argument("--rounds", type=int, default=2)
    qv.add_argument("--threads", type=int, default=2)
    qv.add_argument(
        "--variants",
        default=";".join(["fp32", *QUANT_VARIANTS, "ENABLE_BASIC", "no spinning", "one photo per call", "static QDQ"]),
        help="';'-separated: fp32, the QUANT_VARIANTS names, ENABLE_BASIC, no spinning, one photo per call, static QDQ",
    )
    ld = sub.add_parser("load", help="image tower size on disk, load time and memory, each bundle in its own process")
    ld.add_argument(
        "bundles",
        nargs="+",
        metavar="LABEL=DIR",
        help="a bundle folder with a label; a label ending in ' batched' runs one batch per call",
    )
    ld.add_argument("--batch", type=int, default=16)
    ld.add_argument("--threads", type=int, default=2)
    ld.add_argument("--repeat", type=int, default=3)
    gm = sub.add_parser("gemm", help="fp32 and int8 matrix-multiply GMAC/s of ONNX Runtime on this CPU")
    gm.add_argument("--threads", default="1,2")
    child = sub.add_parser("load-child")
    child.add_argument("bundle", type=Path)
    child.add_argument("--batch", type=int, default=16)
    child.add_argument("--threads", type=int, default=2)
    child.add_argument("--batched", action="store_true")
    one = sub.add_parser("bundle", help="one bundle folder alone")
    one.add_argument("bundle", type=Path)
    one.add_argument("--batch-sizes", default="1,8,32")
    one.add_argument("--images", type=int, default=64)
    one.add_argument("--threads", type=int, default=2)
    one.add_argument("--ingest", type=int, default=256, help="photos for the ingest run (0 to skip)")
    one.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.mode == "quant":
        from benchmarks.common import cpu_summary

        print(f"CPU: {cpu_summary()}; load {os.getloadavg()}")
        rows = quant_variants(
            args.arch,
            [int(b) for b in args.batch_sizes.split(",")],
            args.images,
            args.threads,
            args.rounds,
            [v.strip() for v in args.variants.split(";")],
        )
        print("| variant | batch | images/s | min cosine to fp32 |\n|---|---:|---:|---:|")
        for r in rows:
            print(f"| {r['variant']} | {r['batch']} | {r['images_per_s']:.2f} | {r['min_cosine_vs_fp32']:.5f} |")
        return 0
    if args.mode == "gemm":
        from benchmarks.common import cpu_summary

        print(f"CPU: {cpu_summary()}; load {os.getloadavg()}")
        gemm([int(t) for t in args.threads.split(",")])
        return 0
    if args.mode == "load-child":
        print(json.dumps(load_child(args.bundle, args.batched, args.batch, args.threads)))
        return 0
    if args.mode == "load":
        from benchmarks.common import cpu_summary

        print(f"CPU: {cpu_summary()}; load {os.getloadavg()}")
        rows = load_report(args.bundles, args.batch, args.threads, args.repeat)
        print(
            "| bundle | image.onnx (MB) | load (s) | RSS after load (MB) | peak after a batch (MB) |\n"
            "|---|---:|---:|---:|---:|"
        )
        for r in rows:
            print(
                f"| {r['label']} | {r['image_onnx_mb']:.1f} | {r['load_s']:.2f} | {r['rss_loaded_mb']:.0f} |"
                f" {r['peak_mb']:.0f} |"
            )
        return 0
    if args.mode == "compare":
        report = run_compare(args)
        print(markdown(report))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1))
        return 0
    report = measure(args.bundle, [int(b) for b in args.batch_sizes.split(",")], args.images, args.threads)
    for bs, row in report["image"].items():
        print(f"{report['arch']} {report['precision']} batch {bs:>3}: {row['images_per_s']:8.2f} images/s")
    print(
        f"text query p50 {report['text_query_p50_ms']} ms; preprocessing {report['preprocess_images_per_s']} images/s"
    )
    if args.ingest:
        report["ingest"] = measure_ingest(args.bundle, args.ingest, threads=args.threads)
        r = report["ingest"]
        print(f"ingest {r['ingest_per_s']} photos/s vs encoder alone {r['encoder_alone_per_s']}/s: {r['ratio']}x")
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
