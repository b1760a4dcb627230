#!/usr/bin/env bash
# The side-by-side benchmark (issue 6): set everything up, then run it. Arguments go to
# `python -m bench` (--quick: under two minutes; default: the full run, 10-15 minutes).
# Writes bench/results/latest.json, latest.md and latest.png.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
.venv/bin/python -m bench "$@"
