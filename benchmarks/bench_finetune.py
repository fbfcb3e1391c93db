"""Fine-tuning throughput and peak memory for a full-size Chinese-CLIP (ViT-B-16 by default).

The model is cn_clip's real CLIP class built from the arch's real configs, with random weights (the
figures do not depend on the weights). Each configuration (mode x precision x gradient checkpointing)
runs in its own process, so that peak memory is that configuration's alone:

- GPU: torch.cuda.max_memory_allocated (tensors only, what decides whether a batch fits);
- CPU: the process's peak resident set (ru_maxrss), which includes Python, torch and the model.

A step is photod's own training step (photod.finetune.train.Trainer): forward, contrastive loss, backward,
AdamW. Data comes from a small synthetic dataset at the model's resolution; the first steps warm up and
are not timed. Mixed precision exists on GPUs only (on CPU, training is fp32), so on CPU those rows are
skipped.

    python benchmarks/bench_finetune.py                      # CPU: batch 8, 2 timed steps per config
    python benchmarks/bench_finetune.py --batch 64 --steps 10 # on a GPU box
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def run_one(arch: str, mode: str, precision: str, checkpointing: bool, batch: int, steps: int, warmup: int) -> dict:
    """One configuration, in this process: returns images/s and peak memory."""
    import torch
    from cn_clip.clip import utils as cn_utils

    from photod.finetune.checkpoint import build_model, load_configs
    from photod.finetune.train import TrainConfig, Trainer, _collate
    from photod.model.tokenizer import Tokenizer
    from tests.support import synthetic as syn

    torch.manual_seed(0)
    vision, text, _ = load_configs(arch)
    size = int(vision["image_resolution"])
    model = build_model(vision, text)
    tokenizer = Tokenizer.from_vocab(Path(cn_utils.__file__).parent / "vocab.txt")
    with tempfile.TemporaryDirectory() as tmp:
        info = syn.make_dataset(
            Path(tmp) / "ds", syn.concepts(list(syn.COLOURS)), max(1, batch // 24 + 1), size=size, valid_per_concept=0
        )
        cfg = TrainConfig(
            mode=mode,
            precision=precision,
            grad_checkpointing=checkpointing,
            batch_size=batch,
            max_steps=warmup + steps,
            progress=False,
            save_every=0,
        )
        trainer = Trainer(model, info.lmdb_dir("train"), cfg, Path(tmp) / "ck", tokenizer=tokenizer, image_size=size)
        items = [trainer.data[i % len(trainer.data)] for i in range(batch)]
    images, texts, image_ids, text_ids = _collate(items)
    micro = [(images.to(trainer.device), texts.to(trainer.device), image_ids, text_ids)]
    trainer.model.train()
    if mode == "lit":
        trainer.model.visual.eval()
    cuda = trainer.device.type == "cuda"
    for _ in range(warmup):
        trainer._train_step(micro)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer._train_step(micro)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "arch": arch,
        "mode": mode,
        "precision": trainer.precision,
        "checkpointing": checkpointing,
        "batch": batch,
        "steps": steps,
        "device": str(trainer.device),
        "images_per_s": batch * steps / seconds,
        "seconds_per_step": seconds / steps,
        "peak_memory_mib": peak / 2**20,
        "peak_kind": "cuda allocated" if cuda else "process RSS",
        "threads": torch.get_num_threads(),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="ViT-B-16")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=2, help="timed steps per configuration")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--modes", default="lit,full")
    p.add_argument("--json", metavar="FILE", help="also write the rows here")
    p.add_argument("--one", help=argparse.SUPPRESS)  # child process: mode,precision,checkpointing
    args = p.parse_args()

    if args.one:
        mode, precision, ckpt = args.one.split(",")
        print(json.dumps(run_one(args.arch, mode, precision, ckpt == "1", args.batch, args.steps, args.warmup)))
        return 0

    import torch

    gpu = torch.cuda.is_available()
    precisions = ["fp32", "auto"] if gpu else ["fp32"]
    rows = []
    for mode in args.modes.split(","):
        for precision in precisions:
            for ckpt in (False, True):
                cmd = [
                    sys.executable,
                    __file__,
                    "--arch",
                    args.arch,
                    "--batch",
                    str(args.batch),
                    "--steps",
                    str(args.steps),
                    "--warmup",
                    str(args.warmup),
                    "--one",
                    f"{mode},{precision},{int(ckpt)}",
                ]
                out = subprocess.run(
                    cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
                )
                if out.returncode != 0:
                    print(f"{mode} {precision} ckpt={ckpt}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                    continue
                row = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(
                    f"{row['arch']:<9} {row['mode']:<5} {row['precision']:<5} ckpt={'on ' if ckpt else 'off'} "
                    f"batch {row['batch']:>3}: {row['images_per_s']:8.2f} images/s "
                    f"({row['seconds_per_step']:.2f} s/step), peak {row['peak_memory_mib']:8.0f} MiB "
                    f"({row['peak_kind']}, {row['device']})",
                    flush=True,
                )
    if not gpu:
        print("(CPU: training runs in fp32; mixed precision rows need a GPU)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
