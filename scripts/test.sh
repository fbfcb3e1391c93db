#!/usr/bin/env bash
# Set up on a fresh machine (the finetune extra too: the model tests build small cn_clip models) and run
# the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --finetune
# The TUI test drives the real `photod tui` in tmux; install it where the machine lets us (CI runs as root).
if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq tmux >/dev/null) || echo "tmux not installed: its test will skip"
fi
exec .venv/bin/python -m pytest -q "$@"
