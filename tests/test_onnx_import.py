"""`photod model import` of the ONNX files Chinese-CLIP's own deploy script writes, with no torch.

The files are made here as people make them: an RN50 checkpoint built from cn_clip's classes (random
weights), then cn_clip/deploy/pytorch_to_onnx.py run unchanged (scripts/cn_clip_deploy.py says what it
takes to run it with today's packages), in two shapes:
- with this torch (2.9 or newer): fp32 graphs with their weights in `.onnx.data`, fp16 ones with
  `.onnx.extra_file`;
- as torch before 2.9 wrote them: TorchScript exporter, each fp32 graph one file.
The import itself runs in a virtual environment that has photod's daemon dependencies and not torch nor
cn_clip; search scores through the imported bundle are then compared with cn_clip's PyTorch model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import onnx
import pytest

from photod.errors import ModelError
from photod.model import archs, onnx_import
from photod.model.bundle import VOCAB_SOURCE, Bundle
from photod.model.encoder import ImageEncoder, TextEncoder
from photod.model.verify import BOUNDS, SAMPLE_TEXTS, sample_images

torch = pytest.importorskip("torch")
pytest.importorskip("cn_clip")
pytest.importorskip("onnxmltools")
pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "scripts" / "cn_clip_deploy.py"
# What a venv with only the daemon's dependencies lacks: torch and what comes with it, cn_clip.
WITHOUT = ("torch", "torchvision", "torchgen", "functorch", "triton", "nvidia", "cn_clip", "timm")


def _deploy(checkpoint: Path, folder: Path, *ours: str) -> Path:
    folder.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            str(DEPLOY),
            *ours,
            "--",
            "--model-arch",
            "RN50",
            "--pytorch-ckpt-path",
            str(checkpoint),
            "--save-onnx-path",
            str(folder / "rn50"),
            "--convert-text",
            "--convert-vision",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """{"checkpoint": .pt, "new": folder from this torch, "legacy": folder as older torch wrote it}."""
    root = tmp_path_factory.mktemp("deployed")
    checkpoint = root / "rn50.pt"
    return {
        "new": _deploy(checkpoint, root / "new", "--random", "RN50", str(checkpoint)),
        "legacy": _deploy(checkpoint, root / "legacy", "--torchscript"),
        "checkpoint": checkpoint,
    }


def _venv_without_torch(root: Path) -> Path:
    """A venv whose site-packages reaches every package of this one except WITHOUT (through a folder of
    links named by a .pth file), so `import torch` really fails there. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = Path(
        subprocess.run(
            [str(root / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    links = root / "packages"
    links.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        top = entry.name.split("-")[0].split(".")[0].lower()
        if top in WITHOUT or top.startswith("nvidia") or entry.suffix == ".pth":
            continue
        (links / entry.name).symlink_to(entry)
    (site / "photod-test.pth").write_text(f"{links}\n{REPO}\n", encoding="utf-8")
    return root / "bin" / "python"


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    python = _venv_without_torch(tmp_path_factory.mktemp("venv") / "v")
    probe = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    return python


def _photod(python: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PHOTOD_DATA_DIR=str(data_dir))
    env.pop("PHOTOD_CONFIG", None)
    return subprocess.run(
        [str(python), "-m", "photod", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=600
    )


def _torch_scores(checkpoint: Path, images, texts) -> tuple[np.ndarray, np.ndarray]:
    """cn_clip's own unit image and text embeddings for the checkpoint (its preprocessing and tokenizer)."""
    from cn_clip.clip.utils import _MODEL_INFO, create_model, image_transform, tokenize

    state = torch.load(checkpoint, map_location="cpu")
    model = create_model(_MODEL_INFO["RN50"]["struct"], state).float().eval()
    transform = image_transform(_MODEL_INFO["RN50"]["input_resolution"])
    with torch.no_grad():
        image = model.encode_image(torch.stack([transform(img) for img in images]))
        text = model.encode_text(tokenize(texts, context_length=52))
    return [(x / x.norm(dim=-1, keepdim=True)).numpy() for x in (image, text)]


def _bundle_embeddings(bundle: Bundle, images, texts) -> tuple[np.ndarray, np.ndarray]:
    image, text = ImageEncoder(bundle, threads=2), TextEncoder(bundle, threads=2)
    return image.encode(images), text.encode(texts)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# ---------------------------------------------------------------------------------------------------------


def test_files_from_this_torch_have_the_shapes_people_meet(deployed):
    names = sorted(p.name for p in deployed["new"].iterdir())
    assert names == [
        "rn50.img.fp16.onnx",
        "rn50.img.fp16.onnx.extra_file",
        "rn50.img.fp32.onnx",
        "rn50.img.fp32.onnx.data",
        "rn50.txt.fp16.onnx",
        "rn50.txt.fp16.onnx.extra_file",
        "rn50.txt.fp32.onnx",
        "rn50.txt.fp32.onnx.data",
    ]
    legacy = onnx.load(str(deployed["legacy"] / "rn50.img.fp32.onnx"), load_external_data=False)
    assert not (deployed["legacy"] / "rn50.img.fp32.onnx.data").exists()
    assert next(o.version for o in legacy.opset_import if o.domain == "") == 14


def test_import_without_torch_matches_cn_clip_scores(deployed, bare_python, tmp_path):
    """The whole path in a venv without torch: int8 made on the spot, verified; then the scores of the
    bundle (photod's preprocessing and tokenizer) against cn_clip's PyTorch model."""
    data = tmp_path / "data"
    done = _photod(bare_python, data, "model", "import", str(deployed["new"]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "rn50-int8"
    bundle = Bundle.load(data / "models" / "rn50-int8", verify_files=True)
    assert (bundle.arch, bundle.precision, bundle.embed_dim, bundle.image_size, bundle.context_length) == (
        "RN50",
        "int8",
        1024,
        224,
        52,
    )
    low, mean = BOUNDS["int8"]
    for tower in ("image", "text"):
        figures = bundle.verification["int8"][tower]
        assert figures["min"] >= low and figures["mean"] >= mean
    assert (data / "models" / "ACTIVE").read_text().strip() == "rn50-int8"

    images, texts = sample_images(6, seed=5), SAMPLE_TEXTS[:8]
    want_image, want_text = _torch_scores(deployed["checkpoint"], images, texts)
    got_image, got_text = _bundle_embeddings(bundle, images, texts)
    assert _cos(got_image, want_image).min() >= low
    assert _cos(got_text, want_text).min() >= low
    # Search scores (cosine of photo and query) move by less than int8's rounding allows.
    assert np.abs(got_image @ got_text.T - want_image @ want_text.T).max() < 0.02


def test_pull_without_torch_says_what_to_download(bare_python, tmp_path):
    done = _photod(bare_python, tmp_path / "data", "model", "pull", "ViT-B-16")
    assert done.returncode != 0
    assert "torch" in done.stderr and "vit-b-16.img.fp32.onnx" in done.stderr
    assert "photod model import FOLDER" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("shape", ["new-fp32", "legacy-fp32", "new-fp16"])
def test_every_file_shape_imports_exactly(deployed, tmp_path, shape):
    """fp32 bundles from fp32 files of each shape, an fp16 bundle from fp16 files: the scores are cn_clip's
    to float rounding (fp16: to fp16's), whatever the batch, for texts of any length."""
    made, precision = shape.split("-")
    pair = onnx_import.find_pair([deployed[made] / f"rn50.img.{precision}.onnx"])
    assert pair["text"].path.name == f"rn50.txt.{precision}.onnx" and pair["text"].precision == precision
    bundle = onnx_import.build_bundle(pair, tmp_path / "bundle", *onnx_import.recognise(pair), precision=precision)
    assert (bundle.arch, bundle.precision) == ("RN50", precision)
    images, texts = sample_images(5, seed=1), SAMPLE_TEXTS[:6]
    want_image, want_text = _torch_scores(deployed["checkpoint"], images, texts)
    got_image, got_text = _bundle_embeddings(bundle, images, texts)
    tolerance = 1e-4 if precision == "fp32" else 5e-3
    assert np.abs(got_image @ got_text.T - want_image @ want_text.T).max() < tolerance
    if precision == "fp16":
        assert set(bundle.verification["fp16_source"]) == {"image", "text"}
    # A photo's vector does not depend on its batch-mates, and a text tower takes any token count.
    image = ImageEncoder(bundle, threads=1)
    alone = np.concatenate([image.encode([img]) for img in images])
    assert np.array_equal(alone, image.encode(images[::-1])[::-1])
    text = TextEncoder(bundle, threads=1)
    tokens = text.tokenizer.tokenize(texts[:3], 52)
    short = text.session.run(None, {"text": tokens[:, :20]})[0]
    full = text.session.run(None, {"text": tokens})[0]
    assert not tokens[:, 20:].any() and np.allclose(short, full, atol=1e-6)


def test_a_folder_prefers_fp32_and_the_arch_must_fit(deployed, tmp_path):
    pair = onnx_import.find_pair([deployed["new"]])
    assert {t.precision for t in pair.values()} == {"fp32"}
    with pytest.raises(ModelError, match=r"not ViT-B-16: .*embed_dim: the graphs show 1024, ViT-B-16 has 512"):
        onnx_import.recognise(pair, "ViT-B-16")
    assert onnx_import.recognise(pair)[1] == "RN50"


def test_a_missing_weights_file_is_named(deployed, tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in ("rn50.img.fp32.onnx", "rn50.txt.fp32.onnx", "rn50.txt.fp32.onnx.data"):
        (folder / name).symlink_to(deployed["new"] / name)
    pair = onnx_import.find_pair([folder])
    with pytest.raises(
        ModelError,
        match=r"rn50.img.fp32.onnx keeps its weights in rn50.img.fp32.onnx.data, "
        r"which is not beside it",
    ):
        onnx_import.load_tower(pair["image"])


def test_half_a_pair_or_no_model_is_refused(deployed, tmp_path):
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "rn50.img.fp32.onnx").symlink_to(deployed["legacy"] / "rn50.img.fp32.onnx")
    with pytest.raises(ModelError, match="the text tower is missing"):
        onnx_import.find_pair([lone])
    (tmp_path / "notes.onnx").write_text("not a model")
    with pytest.raises(ModelError, match="notes.onnx is not an ONNX model"):
        onnx_import.find_pair([tmp_path / "notes.onnx"])


def test_the_architecture_table_is_cn_clips():
    import json

    import cn_clip.clip.utils as cn_utils

    configs = Path(cn_utils.__file__).parent / "model_configs"
    for name, (vision, text) in archs.CONFIGS.items():
        struct = cn_utils._MODEL_INFO[name]["struct"]
        vision_name, text_name = struct.split("@")
        assert json.loads((configs / f"{vision_name}.json").read_text()) == vision
        assert json.loads((configs / f"{text_name}.json").read_text()) == text
    assert VOCAB_SOURCE.read_bytes() == (Path(cn_utils.__file__).parent / "vocab.txt").read_bytes()


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_vit_attention_is_fused_from_the_graph_alone(tmp_path, exporter):
    """A ViT image tower exported as the deploy script exports it (by each of torch's exporters): every
    attention block becomes one Attention node, the embeddings stay those of the plain graph, and the int8
    tower built from it is QAttention and passes the import's check."""
    from collections import Counter

    from photod.model import fuse
    from photod.model.preprocess import preprocess_batch
    from tests.support.smallmodels import SMALL_VIT, build_small_model

    model = build_small_model("vit", seed=3).eval()
    size = SMALL_VIT["image_resolution"]
    example = torch.zeros(1, 3, size, size)
    path = tmp_path / "vit.img.fp32.onnx"
    options = {"dynamo": False, "opset_version": 14} if exporter == "torchscript" else {"opset_version": 13}
    torch.onnx.export(
        model,
        (example, None),
        str(path),
        input_names=["image"],
        output_names=["unnorm_image_features"],
        export_params=True,
        do_constant_folding=False,
        **options,
    )
    plain = onnx.load(str(path))
    fused = fuse.fold_constants(path, tmp_path / "folded.onnx", external=False)
    heads = SMALL_VIT["vision_width"] // SMALL_VIT["vision_head_width"]
    assert fuse.fuse_attention(fused, heads) == SMALL_VIT["vision_layers"]
    assert Counter(n.op_type for n in fused.graph.node)["Softmax"] == 0
    inputs = preprocess_batch(sample_images(4, seed=2), size)
    fused_path = tmp_path / "fused.onnx"
    onnx.save(fused, str(fused_path))
    want, got = onnx_import._row_by_row(path, inputs), onnx_import._row_by_row(fused_path, inputs)
    assert _cos(got, want).min() > 0.99999

    built = onnx_import._build_tower(
        plain, "image", "int8", SMALL_VIT["embed_dim"], heads, tmp_path, tmp_path / "image.onnx", inputs
    )
    assert built["fused"] and built["figures"]["min"] >= BOUNDS["int8"][0]
    body = onnx.load(str(tmp_path / "image.onnx")).graph.node[0].attribute[0].g
    assert Counter(n.op_type for n in body.node)["QAttention"] == SMALL_VIT["vision_layers"]
