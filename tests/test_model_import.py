"""`photod model import` / `pull`: small cn_clip checkpoints exported to ONNX bundles and checked against
cn_clip's PyTorch output; mismatched and unsafe checkpoints refused; pulling offline fails fast."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cn_clip", reason="needs the finetune extra (torch, cn_clip)")

import torch  # noqa: E402

from photod.errors import ModelError  # noqa: E402
from photod.finetune import checkpoint as ckpt_mod  # noqa: E402
from photod.finetune import export as export_mod  # noqa: E402
from photod.finetune import modelhub  # noqa: E402
from photod.model import bundle as bundles  # noqa: E402
from photod.model import registry  # noqa: E402
from tests.support import modelkit  # noqa: E402
from tests.support.smallmodels import build_small_checkpoint  # noqa: E402

pytestmark = pytest.mark.model

KINDS = ["small_vit_bundle", "small_rn_bundle"]


@pytest.fixture(params=KINDS)
def small(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def photos():
    from tests.conftest import SAMPLES

    paths = modelkit.sample_photos(SAMPLES if SAMPLES.is_dir() else None, count=10)[4:]
    return modelkit.open_images(paths) or export_mod.sample_images(5, seed=7)


# --------------------------------------------------------------------------------------------------------
# the import path, end to end


def test_fp32_bundle_matches_cn_clip_pytorch(small, photos):
    bundle = small.bundles["fp32"]
    assert bundle.precision == "fp32" and bundle.arch == "custom"
    assert bundle.verification["fp32"]["image"]["min"] >= 0.9999
    assert bundle.verification["fp32"]["text"]["min"] >= 0.9999
    # Independently of the export's own check: other photos and texts, a separately loaded PyTorch model.
    ref_img, ref_txt = modelkit.torch_reference(small, photos, modelkit.TEXTS)
    img, txt = modelkit.onnx_embeddings(bundle, photos, modelkit.TEXTS)
    assert modelkit.cosines(img, ref_img).min() >= 0.9999
    assert modelkit.cosines(txt, ref_txt).min() >= 0.9999
    assert np.allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precision_figures_recorded_and_within_bounds(small, photos, precision):
    bundle = small.bundles[precision]
    figures = bundle.verification[precision]
    low, mean = export_mod.BOUNDS[precision]
    for tower in ("image", "text"):
        assert low <= figures[tower]["min"] <= figures[tower]["mean"] <= 1.0 + 1e-6
        assert figures[tower]["mean"] >= mean
    print(f"\n{small.kind} {precision}: {json.dumps(figures)} import {small.seconds[precision]:.2f}s")
    ref_img, ref_txt = modelkit.torch_reference(small, photos, modelkit.TEXTS)
    img, txt = modelkit.onnx_embeddings(bundle, photos, modelkit.TEXTS)
    assert modelkit.cosines(img, ref_img).min() >= low
    assert modelkit.cosines(txt, ref_txt).min() >= low
    if precision == "int8":
        assert bundle.image_path.stat().st_size < small.bundles["fp32"].image_path.stat().st_size
        assert bundle.text_path.stat().st_size < 0.5 * small.bundles["fp32"].text_path.stat().st_size


def test_dynamic_batch_one_and_five(small, photos):
    import torch as _torch
    from cn_clip.clip import image_transform, tokenize

    bundle = small.bundles["int8"]
    pixels = _torch.stack([image_transform(bundle.image_size)(p) for p in (photos * 5)[:5]]).numpy()
    tokens = tokenize(modelkit.TEXTS[:5], context_length=bundle.context_length).numpy()
    image = modelkit.session(bundle.image_path)
    text = modelkit.session(bundle.text_path)
    five = image.run(None, {"image": pixels})[0]
    one = image.run(None, {"image": pixels[2:3]})[0]
    assert five.shape == (5, bundle.embed_dim) and one.shape == (1, bundle.embed_dim)
    assert modelkit.cosines(one, five[2:3])[0] > 0.999  # int8 activations are quantized per batch
    five_t = text.run(None, {"text": tokens})[0]
    one_t = text.run(None, {"text": tokens[3:4]})[0]
    assert five_t.shape == (5, bundle.embed_dim)
    assert modelkit.cosines(one_t, five_t[3:4])[0] > 0.999


def test_manifest_describes_the_model(small):
    b = small.bundles["int8"]
    assert b.embed_dim == 32 and b.image_size == 64 and b.context_length == 52
    assert b.vision_config["image_resolution"] == 64 and b.text_config["vocab_size"] == 21128
    assert b.export["image"]["exporter"] == "torchscript" and b.export["image"]["opset"] >= 17
    assert b.source == str(small.checkpoint.resolve())
    assert b.vocab_path.read_text(encoding="utf-8").count("\n") >= 21128
    assert b.name == f"small-{small.kind}-s0-int8"
    assert registry.active_bundle(small.data_dir).name == f"small-{small.kind}-s0-fp32"
    assert {x.name for x in registry.list_bundles(small.data_dir)} == {
        f"small-{small.kind}-s0-{p}" for p in modelkit.PRECISIONS
    }
    # Different precisions are different image towers: vectors of one are not valid for another.
    assert len({x.image_id for x in small.bundles.values()}) == 3
    assert not [p for p in registry.models_dir(small.data_dir).iterdir() if p.name.startswith(".")]


def test_int8_bundle_vectors_do_not_depend_on_batch_mates(small_vit_bundle, photos):
    from photod.model.encoder import ImageEncoder, TextEncoder

    bundle = small_vit_bundle.bundles["int8"]
    images = (photos * 3)[:8]
    encoder = ImageEncoder(bundle, threads=2)
    alone = np.vstack([encoder.encode([img]) for img in images])
    for mix in (images, images[::-1], images[5:] + export_mod.sample_images(4, seed=3) + images[:5]):
        got = encoder.encode(mix)
        for img, vec in zip(mix, got):
            if any(img is x for x in images):
                assert np.array_equal(vec, alone[next(i for i, x in enumerate(images) if x is img)])
    text = TextEncoder(bundle, threads=2)
    texts = modelkit.TEXTS
    assert np.array_equal(text.encode(texts), np.vstack([text.encode([t]) for t in texts]))
    ref_img, _ = modelkit.torch_reference(small_vit_bundle, images, texts)
    assert modelkit.cosines(alone, ref_img).min() >= export_mod.BOUNDS["int8"][0]


def test_bundle_works_with_the_daemon_encoder(small_vit_bundle, photos):
    from photod.model import encoder

    bundle = small_vit_bundle.bundles["fp32"]
    ref_img, ref_txt = modelkit.torch_reference(small_vit_bundle, photos, modelkit.TEXTS)
    img = encoder.ImageEncoder(bundle, threads=1).encode(photos)
    txt = encoder.TextEncoder(bundle, threads=1).encode(modelkit.TEXTS)
    # photod's torch-free tokenizer and preprocessing, fed to the exported graphs, reproduce cn_clip.
    assert modelkit.cosines(img, ref_img).min() >= 0.9999
    assert modelkit.cosines(txt, ref_txt).min() >= 0.9999


# --------------------------------------------------------------------------------------------------------
# refusals


def test_disagreeing_export_is_refused_and_nothing_written(small_vit_bundle, tmp_path, monkeypatch):
    data = tmp_path / "data"
    ckpt, vcfg, tcfg = small_vit_bundle.checkpoint, small_vit_bundle.vision_config, small_vit_bundle.text_config
    first = export_mod.import_checkpoint(ckpt, data, vision_config=vcfg, text_config=tcfg, precision="fp32")
    # Bounds no real quantization can meet: the int8 tower must be refused after measuring it.
    monkeypatch.setitem(export_mod.BOUNDS, "int8", (1.01, 1.01))
    with pytest.raises(ModelError, match=r"int8 ONNX image tower disagrees.*cosine min 0\.9"):
        export_mod.import_checkpoint(ckpt, data, vision_config=vcfg, text_config=tcfg, precision="int8")
    assert sorted(p.name for p in registry.models_dir(data).iterdir()) == ["ACTIVE", first.name]
    assert registry.active_bundle(data).model_id == first.model_id


def test_broken_fp32_export_is_refused(small_vit_bundle, tmp_path, monkeypatch):
    # An exported graph that computes something else (here: the image tower with one weight zeroed).
    real_export = export_mod._export

    def sabotaged(module, example, path, input_name, output_name, **kwargs):
        info = real_export(module, example, path, input_name, output_name, **kwargs)
        if input_name == "image":
            import onnx
            from onnx import numpy_helper

            model = onnx.load(str(path))
            init = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
            arr = numpy_helper.to_array(init).copy()
            arr[...] = arr[::-1] if arr.ndim else arr
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
            onnx.save(model, str(path))
        return info

    monkeypatch.setattr(export_mod, "_export", sabotaged)
    s = small_vit_bundle
    with pytest.raises(ModelError, match="fp32 ONNX image tower disagrees"):
        export_mod.import_checkpoint(
            s.checkpoint, tmp_path / "d", vision_config=s.vision_config, text_config=s.text_config, precision="fp32"
        )
    assert not [p for p in registry.models_dir(tmp_path / "d").iterdir()]


def test_mismatched_checkpoint_names_keys(small_vit_bundle, tmp_path):
    s = small_vit_bundle
    rn_vision = tmp_path / "rn.json"
    rn_vision.write_text(
        json.dumps(
            {
                "embed_dim": 32,
                "image_resolution": 64,
                "vision_layers": "[1,1,1,1]",
                "vision_width": 16,
                "vision_patch_size": None,
            }
        )
    )
    with pytest.raises(ModelError) as err:
        export_mod.import_checkpoint(s.checkpoint, tmp_path / "d", vision_config=rn_vision, text_config=s.text_config)
    msg = str(err.value)
    assert "does not fit architecture custom" in msg
    assert "missing keys (first: visual.conv1.weight" in msg or "missing keys (first: visual." in msg
    assert "unexpected keys (first: visual." in msg
    assert "vision_width=64" in msg and "vision_patch_size=16" in msg  # the hint describes the checkpoint
    with pytest.raises(ModelError, match=r"does not fit architecture ViT-B-16.*shape mismatches"):
        export_mod.import_checkpoint(s.checkpoint, tmp_path / "d", arch="ViT-B-16")
    assert not (tmp_path / "d" / "models").exists() or not list((tmp_path / "d" / "models").iterdir())


@pytest.mark.parametrize("arch", ["RN50", "ViT-B-16", "ViT-L-14-336"])
def test_guess_arch_from_real_shapes(arch):
    vision, text, _ = ckpt_mod.load_configs(arch)
    with torch.device("meta"):  # real architecture, no memory: only the shapes matter here
        model = ckpt_mod.build_model(vision, text)
    assert ckpt_mod.guess_arch(model.state_dict()) == arch


def test_wrong_arch_hint_names_the_right_one(tmp_path):
    vision, text, _ = ckpt_mod.load_configs("RN50")
    with torch.device("meta"):
        state = ckpt_mod.build_model(vision, text).state_dict()
    vit_vision, vit_text, _ = ckpt_mod.load_configs("ViT-B-16")
    with torch.device("meta"):
        vit_state = ckpt_mod.build_model(vit_vision, vit_text).state_dict()
    err = ckpt_mod._mismatch_error(Path("x.pt"), "ViT-B-16", state, vit_state)
    assert "looks like --arch RN50" in str(err)


def test_weights_only_refuses_pickled_code(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "extra": Payload()}, path)
    with pytest.raises(ModelError, match="refusing to unpickle"):
        ckpt_mod.read_checkpoint(path)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        ckpt_mod.read_checkpoint(tmp_path / "nope.pt")
    text = tmp_path / "notes.pt"
    text.write_text("just text")
    with pytest.raises(ModelError, match="is not a PyTorch checkpoint"):
        ckpt_mod.read_checkpoint(text)
    bare = tmp_path / "bare.pt"
    torch.save({"weights": torch.zeros(2)}, bare)
    with pytest.raises(ModelError, match="without 'state_dict'"):
        ckpt_mod.read_checkpoint(bare)


def test_checkpoint_format_as_cn_clip_writes_it(tmp_path):
    ckpt, _, _ = build_small_checkpoint(tmp_path, "vit")
    raw = torch.load(ckpt, weights_only=True)
    assert {"epoch", "name", "state_dict"} <= set(raw)
    assert all(k.startswith("module.") for k in raw["state_dict"])
    state, info = ckpt_mod.read_checkpoint(ckpt)
    assert info["name"] == "small-vit" and not any(k.startswith("module.") for k in state)


def test_config_errors(tmp_path):
    from tests.support.smallmodels import SMALL_TEXT

    (tmp_path / "t.json").write_text(json.dumps(SMALL_TEXT))
    with pytest.raises(ModelError, match="unknown architecture 'ViT-Z'.*"):
        ckpt_mod.load_configs("ViT-Z")
    with pytest.raises(ModelError, match="architecture is not given"):
        ckpt_mod.load_configs()
    bad = tmp_path / "v.json"
    bad.write_text(json.dumps({"embed_dim": 8, "image_resolution": 32, "vision_layers": 2}))
    with pytest.raises(ModelError, match="lacks vision_width, vision_patch_size"):
        ckpt_mod.load_configs(vision_config=bad, text_config=tmp_path / "t.json")
    evil = tmp_path / "e.json"
    evil.write_text(
        json.dumps(
            {
                "embed_dim": 8,
                "image_resolution": 32,
                "vision_layers": "__import__('os')",
                "vision_width": 8,
                "vision_patch_size": 8,
            }
        )
    )
    with pytest.raises(ModelError, match="not a list of integers"):
        ckpt_mod.load_configs(vision_config=evil, text_config=tmp_path / "t.json")
    with pytest.raises(ModelError, match="does not exist"):
        ckpt_mod.load_configs(vision_config=evil, text_config=tmp_path / "missing.json")
    with pytest.raises(ModelError, match="either --arch or"):
        ckpt_mod.load_configs("RN50", vision_config=evil, text_config=tmp_path / "t.json")


def test_name_taken_is_refused_then_replaced(small_rn_bundle):
    s = small_rn_bundle
    kw = dict(vision_config=s.vision_config, text_config=s.text_config, precision="fp32", activate=False)
    with pytest.raises(ModelError, match="already installed"):
        export_mod.import_checkpoint(s.checkpoint, s.data_dir, **kw)
    again = export_mod.import_checkpoint(s.checkpoint, s.data_dir, replace=True, **kw)
    # Same checkpoint, same export: the content id is reproducible.
    assert again.model_id == s.bundles["fp32"].model_id


def test_default_names():
    assert export_mod.default_name("/x/clip_cn_vit-b-16.pt", "ViT-B-16", "int8") == "vit-b-16-int8"
    assert export_mod.default_name("/x/My Epoch 3.pt", "custom", "fp16") == "my-epoch-3-fp16"


# --------------------------------------------------------------------------------------------------------
# pull


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_pull_offline_fails_fast_naming_the_source(data_dir, monkeypatch):
    # A real connection attempt to an endpoint that refuses, as a blocked network does.
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    t0 = time.monotonic()
    with pytest.raises(ModelError) as err:
        modelhub.pull("ViT-B-16", data_dir, source="huggingface")
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert "from huggingface" in msg and "127.0.0.1" in msg
    assert "photod model import clip_cn_vit-b-16.pt --arch ViT-B-16" in msg
    assert "--source modelscope" in msg
    assert not (data_dir / "models").exists()


def test_pull_real_hosts_fail_fast_here(data_dir):
    host, port = modelhub.source_host("modelscope")
    if modelhub.check_reachable(host, port, timeout=3) is None:
        pytest.skip("this machine can reach ModelScope")
    t0 = time.monotonic()
    with pytest.raises(ModelError, match=r"cannot reach www\.modelscope\.cn:443 .*from modelscope"):
        modelhub.pull("RN50", data_dir, source="modelscope")
    assert time.monotonic() - t0 < 10


def test_pull_timeout_is_bounded(monkeypatch):
    # A listening socket that never accepts would hang a connect without a timeout; simulate a slow DNS.
    def slow_connect(*a, **k):
        time.sleep(5)
        raise OSError("late")

    monkeypatch.setattr(socket, "create_connection", slow_connect)
    t0 = time.monotonic()
    assert "no answer within 0.3 s" == modelhub.check_reachable("example.invalid", 443, timeout=0.3)
    assert time.monotonic() - t0 < 2


def test_check_reachable_on_a_real_listener():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert modelhub.check_reachable("127.0.0.1", server.getsockname()[1], timeout=2) is None
    assert "ConnectionRefused" in modelhub.check_reachable("127.0.0.1", _closed_port(), timeout=2)


def test_pull_uses_cn_clip_download_then_imports(data_dir, monkeypatch):
    from cn_clip.clip import utils as cn_utils

    calls = {}
    monkeypatch.setattr(modelhub, "check_reachable", lambda *a, **k: None)

    def fake_download(name, root, use_modelscope=False):
        calls["download"] = (name, root, use_modelscope)
        return os.path.join(root, "clip_cn_rn50.pt")

    monkeypatch.setattr(cn_utils, "_download", fake_download)
    monkeypatch.setattr(modelhub, "import_file", lambda ckpt, d, **kw: calls.setdefault("import", (ckpt, kw)))
    modelhub.pull("RN50", data_dir, source="modelscope", precision="fp16")
    assert calls["download"] == ("RN50", str(data_dir / "downloads"), True)
    ckpt, kw = calls["import"]
    assert ckpt.endswith("clip_cn_rn50.pt")
    assert kw["arch"] == "RN50" and kw["precision"] == "fp16" and kw["source"] == "modelscope:RN50"
    assert kw["keep_checkpoint"] is True  # so `photod finetune` can start from the pulled bundle


def test_pull_download_error_is_a_model_error(data_dir, monkeypatch):
    from cn_clip.clip import utils as cn_utils

    monkeypatch.setattr(modelhub, "check_reachable", lambda *a, **k: None)

    def broken(name, root, use_modelscope=False):
        raise RuntimeError("Ckpt download requires `modelscope`.")

    monkeypatch.setattr(cn_utils, "_download", broken)
    with pytest.raises(ModelError, match=r"downloading ViT-L-14 from modelscope failed.*requires `modelscope`"):
        modelhub.pull("ViT-L-14", data_dir, source="modelscope")


def test_pull_unknown_name_and_source(data_dir):
    with pytest.raises(ModelError, match="no official Chinese-CLIP model named 'ViT-X'"):
        modelhub.pull("ViT-X", data_dir)
    with pytest.raises(ModelError, match="unknown model source 'civitai'"):
        modelhub.pull("RN50", data_dir, source="civitai")


def test_missing_finetune_extra_says_what_to_install(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "cn_clip", None)  # import cn_clip now raises ImportError
    with pytest.raises(ModelError) as err:
        modelhub.import_file(tmp_path / "x.pt", tmp_path, arch="RN50")
    assert "pip install 'photod[finetune]'" in str(err.value)
    with pytest.raises(ModelError, match=r"photod\[finetune\]"):
        modelhub.pull("RN50", tmp_path)


def test_text_queries_run_on_their_own_length_and_match_the_padded_embedding(small_vit_bundle):
    import onnxruntime as ort

    from photod.model.encoder import TextEncoder
    from photod.model.tokenizer import Tokenizer

    bundle = small_vit_bundle.bundles["fp32"]
    enc = TextEncoder(bundle, threads=1)
    assert enc.trims and bundle.export["text"]["dynamic_tokens"] is True
    texts = ["海边的日落", "a red dress on the grass", "婚礼"]
    padded = Tokenizer.from_vocab(bundle.vocab_path).tokenize(texts, bundle.context_length)
    sess = ort.InferenceSession(str(bundle.text_path), providers=["CPUExecutionProvider"])
    reference = sess.run(None, {bundles.TEXT_INPUT: padded})[0]
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    got = enc.encode(texts)
    assert (got * reference).sum(axis=1).min() > 0.9999


# --------------------------------------------------------------------------------------------------------
# the fused ViT image tower (photod/finetune/optimize.py)


def _ops(path: Path) -> dict[str, int]:
    import collections

    import onnx

    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def _vit_model(layers: int, width: int, head_width: int, patch: int = 8, resolution: int = 32):
    from tests.support.smallmodels import SMALL_TEXT

    vision = {
        "embed_dim": 16,
        "image_resolution": resolution,
        "vision_layers": layers,
        "vision_width": width,
        "vision_patch_size": patch,
        "vision_head_width": head_width,
    }
    vision = ckpt_mod.normalise_vision_config(vision, "test vit")
    torch.manual_seed(layers * 100 + width)
    return ckpt_mod.build_model(vision, dict(SMALL_TEXT)), vision, dict(SMALL_TEXT)


@pytest.mark.parametrize("layers,width,head_width", [(1, 32, 16), (3, 48, 16)])
def test_fused_tower_computes_the_original_embedding_and_leaves_the_model_alone(layers, width, head_width):
    from photod.finetune.optimize import fused_image_tower

    model, vision, _ = _vit_model(layers, width, head_width)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fused_image_tower(model)
    pixels = torch.randn(3, 3, vision["image_resolution"], vision["image_resolution"])
    with torch.no_grad():
        want = model.encode_image(pixels)
        got = fused(pixels)
    want = want / want.norm(dim=-1, keepdim=True)
    assert torch.allclose(got, want, atol=1e-5)
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert not model.training


def test_fused_tower_only_for_plain_vit_attention():
    from photod.finetune.optimize import fused_image_tower
    from tests.support.smallmodels import build_small_model

    assert fused_image_tower(build_small_model("rn")) is None
    model = build_small_model("vit")
    model.visual.transformer.resblocks[0].attn_mask = torch.zeros(17, 17)
    assert fused_image_tower(model) is None


@pytest.mark.parametrize("layers,width,head_width", [(1, 32, 16), (3, 48, 16)])
def test_fused_vit_int8_graph_has_qattention_and_verifies(tmp_path, layers, width, head_width):
    model, vision, text = _vit_model(layers, width, head_width)
    bundle = export_mod.export_bundle_from_model(model, vision, text, tmp_path / "b", precision="int8")
    ops = _ops(bundle.image_path)
    # Every block but the last (class token only) is one QAttention; no unfused attention left in them.
    assert ops["QAttention"] == layers - 1 and ops["Softmax"] == 1 and ops["Attention"] == 0
    assert bundle.export["image"]["fused"] is True
    # Every weight is int8 and quantized once, at export: the packed QKV weights the exporter writes as
    # Constant nodes used to stay fp32 beside the graph and be quantized again on every run.
    import onnx

    graph = onnx.load(str(bundle.image_path)).graph
    inits = {t.name: t for t in graph.initializer}
    assert not [n for n in graph.node if n.op_type == "Constant" and n.attribute[0].t.ByteSize() >= 1024]
    for node in (n for n in graph.node if n.op_type == "QAttention"):
        assert inits[node.input[1]].data_type == onnx.TensorProto.INT8
    figures = bundle.verification["int8"]["image"]
    assert figures["min"] >= export_mod.BOUNDS["int8"][0] and figures["mean"] >= export_mod.BOUNDS["int8"][1]
    print(f"\nfused ViT {layers} layers int8 image: {json.dumps(figures)}")
    # Independently of the export's own check: the graph at batch 1 and 4 against the original model.
    pixels = torch.randn(4, 3, vision["image_resolution"], vision["image_resolution"])
    with torch.no_grad():
        want = model.encode_image(pixels).numpy()
    sess = modelkit.session(bundle.image_path)
    got = sess.run(None, {bundles.IMAGE_INPUT: pixels.numpy()})[0]
    one = sess.run(None, {bundles.IMAGE_INPUT: pixels[:1].numpy()})[0]
    assert modelkit.cosines(got, want).min() >= export_mod.BOUNDS["int8"][0]
    assert modelkit.cosines(one, want[:1])[0] >= export_mod.BOUNDS["int8"][0]


def test_small_bundles_fused_where_it_applies(small_vit_bundle, small_rn_bundle):
    vit, rn = small_vit_bundle.bundles, small_rn_bundle.bundles
    assert _ops(vit["fp32"].image_path)["Attention"] == 1 and vit["fp32"].export["image"]["fused"] is True
    assert _ops(vit["int8"].image_path)["QAttention"] == 1 and vit["int8"].export["image"]["fused"] is True
    # fp16 (for GPUs) and ResNet towers keep the plain export; text towers are never fused.
    assert vit["fp16"].export["image"]["fused"] is False and not _ops(vit["fp16"].image_path)["Attention"]
    assert all(b.export["image"]["fused"] is False for b in rn.values())
    assert all(b.export["text"]["fused"] is False for b in (*vit.values(), *rn.values()))


@pytest.mark.parametrize("failure", ["export raises", "graph disagrees"])
def test_fused_export_failure_falls_back_to_the_plain_tower(tmp_path, monkeypatch, caplog, failure):
    import onnx
    from onnx import numpy_helper

    real_export = export_mod._export

    def fused_breaks(module, example, path, input_name, output_name, fused=False):
        if fused and failure == "export raises":
            raise RuntimeError("exporter cannot write com.microsoft.Attention")
        info = real_export(module, example, path, input_name, output_name, fused=fused)
        if fused:  # the fused graph computes something else: its largest weight reversed
            graph = onnx.load(str(path))
            init = max(graph.graph.initializer, key=lambda t: np.prod(t.dims))
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init)[::-1].copy(), init.name))
            onnx.save(graph, str(path))
        return info

    monkeypatch.setattr(export_mod, "_export", fused_breaks)
    model, vision, text = _vit_model(2, 32, 16)
    bundle = export_mod.export_bundle_from_model(model, vision, text, tmp_path / "b", precision="int8")
    assert bundle.export["image"]["fused"] is False and _ops(bundle.image_path)["QAttention"] == 0
    assert bundle.verification["fp32"]["image"]["min"] >= 0.9999
    assert bundle.verification["int8"]["image"]["min"] >= export_mod.BOUNDS["int8"][0]
    assert "fused image tower did not export or verify" in caplog.text
