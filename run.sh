#!/usr/bin/env bash
# The main job (docs/main-job.md): set everything up, bring a devnet up (anvil, the
# contracts, a committee of 4 ledger nodes), run a provider agent selling a simulated
# language model and buyer agents paying for each request, settle on chain, print a
# checked summary, and bring the devnet down (exit 1 on a mismatch). Arguments go to
# `devnet trade`: --requests N, --buyers N, --seed N, --keep, --port 0 (a free port),
# --state-dir DIR. `.venv/bin/devnet up|status|down` still manage a devnet by hand.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/devnet trade "$@"
