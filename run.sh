#!/usr/bin/env bash
# The main job: set everything up, bring the devnet up (anvil, contracts, committee,
# funded agent accounts, the committee's ledger nodes) and print its status. Arguments go to `devnet up`
# (e.g. --port 0 for a free port, --state-dir DIR). `.venv/bin/devnet down` stops it.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
status_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --state-dir) status_args=(--state-dir "${args[$((i + 1))]:-}") ;;
    --state-dir=*) status_args=("${args[$i]}") ;;
  esac
done
.venv/bin/devnet up "$@"
.venv/bin/devnet status "${status_args[@]}"
