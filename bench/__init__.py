"""The side-by-side benchmark of issue 6: Farthing payments through the 4-node devnet
against plain ERC-20 transfers and EIP-3009 payments on the same anvil, and against the
machine's crypto bound; plus latency under load, settlement gas, disk, memory and restart.

    ./bench.sh [--quick]            # or: .venv/bin/python -m bench [--quick]

writes ``bench/results/latest.json``, ``latest.md`` and ``latest.png``
(:mod:`bench.runner` runs the parts, :mod:`bench.report` has the keys and targets).
"""
