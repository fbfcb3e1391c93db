#!/usr/bin/env bash
# Set up on a fresh machine and run the daemon in the foreground on the example config.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/photod --config config.toml run "$@"
