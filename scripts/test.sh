#!/usr/bin/env bash
# Set up on a fresh machine (the finetune extra too: the model tests build small cn_clip models) and run
# the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --finetune
exec .venv/bin/python -m pytest -q "$@"
