#!/usr/bin/env bash
# The gates CI runs before the tests: lint, format and types (configured in pyproject.toml). Needs the test
# extra in .venv (./scripts/setup.sh does it).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
