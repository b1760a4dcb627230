#!/usr/bin/env bash
# The main job: set everything up, bring the devnet up (anvil, contracts, committee,
# funded agent accounts) and print its status. `.venv/bin/devnet down` stops it.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
.venv/bin/devnet up "$@"
.venv/bin/devnet status
