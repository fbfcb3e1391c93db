#!/usr/bin/env bash
# Create .venv and install photod into it, with text in photos (the ocr extra). `--finetune` adds torch +
# cn_clip (model import and training) and JPEG XL (the jxl extra, GPL-3.0), which the test suite covers.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--finetune" ]; then
  # torch before cn_clip: cn_clip asks for any torch, and pip must not pick a different build for it.
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  .venv/bin/python -m pip install -q -e ".[finetune,ocr,jxl,test]"
else
  .venv/bin/python -m pip install -q -e ".[ocr,test]"
fi
