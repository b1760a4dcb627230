#!/usr/bin/env bash
# Set everything up and run the whole test suite (unit, property, contract and
# integration tests; they start and stop their own anvil on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
