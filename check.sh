#!/usr/bin/env bash
# Developer checks: lint and format (ruff), types (mypy strict), then the tests.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
