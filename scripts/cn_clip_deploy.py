"""Run Chinese-CLIP's own ONNX deploy script (cn_clip/deploy/pytorch_to_onnx.py) unchanged, with today's packages.

    python scripts/cn_clip_deploy.py [--torchscript] [--random ARCH CHECKPOINT.pt] -- DEPLOY-SCRIPT-ARGS...

Writes the files people import with `photod model import` (tests/test_onnx_import.py, scripts/arm64-check.sh).
Two things keep the script from running as it is here:
- its fp16 step imports `convert_float_to_float16` from onnxmltools, which moved it to
  `onnxconverter_common.float16`: the old name is pointed at the new one;
- it imports `clip.utils`, as when run from inside cn_clip/ (its run_scripts set PYTHONPATH so): cn_clip's
  folder goes on the path.
--torchscript: export as torch before 2.9 did by default (TorchScript exporter, one file per fp32 graph), at
  opset 14 rather than the script's 13, which this torch's attention op (scaled_dot_product_attention) needs.
--random ARCH CHECKPOINT.pt: first write a checkpoint of cn_clip's ARCH with random weights (seed 0), as
  cn_clip's trainer saves one, for the script's --pytorch-ckpt-path.
"""

import argparse
import os
import runpy
import sys


def random_checkpoint(arch: str, path: str) -> None:
    import torch
    from cn_clip.clip.utils import _MODEL_INFO, create_model

    torch.manual_seed(0)
    torch.save({"state_dict": create_model(_MODEL_INFO[arch]["struct"]).state_dict()}, path)


def torchscript_export() -> None:
    import torch

    export = torch.onnx.export

    def legacy(*args, **kwargs):
        return export(*args, **{**kwargs, "dynamo": False, "opset_version": 14})

    torch.onnx.export = legacy


def main() -> None:
    parser = argparse.ArgumentParser(usage=__doc__.splitlines()[2].strip())
    parser.add_argument("--torchscript", action="store_true")
    parser.add_argument("--random", nargs=2, metavar=("ARCH", "CHECKPOINT"))
    ours, theirs = sys.argv[1:], []
    if "--" in ours:
        at = ours.index("--")
        ours, theirs = ours[:at], ours[at + 1 :]
    args = parser.parse_args(ours)
    if args.random:
        random_checkpoint(*args.random)
    import cn_clip
    import onnxconverter_common.float16
    import onnxmltools.utils

    onnxmltools.utils.convert_float_to_float16 = onnxconverter_common.float16.convert_float_to_float16
    if args.torchscript:
        torchscript_export()
    sys.path.append(os.path.dirname(cn_clip.__file__))
    sys.argv = ["pytorch_to_onnx.py", *theirs]
    runpy.run_module("cn_clip.deploy.pytorch_to_onnx", run_name="__main__")


if __name__ == "__main__":
    main()
