"""Micro benchmark of the Merkle log: CompactRange.append into a DictNodeStore, and
inclusion / consistency proofs built by node.merkle.proof and checked by wallet.merkle.

    .venv/bin/python -m scripts.bench_merkle                 # sizes 1e3, 1e5, 1e6
    .venv/bin/python -m scripts.bench_merkle --sizes 1000 --samples 200

For each size it builds the tree in memory, timing every append (leaf hashes are computed
beforehand: hashing an entry is not the tree's cost), then times ``--samples`` proofs at
random indexes (seeded). It prints medians in microseconds, and the most stored nodes any
proof read.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from node.merkle import CompactRange, DictNodeStore, consistency_proof, inclusion_proof, root_at
from wallet import merkle
from wallet.types import Hash32


def _us(ns: list[int]) -> float:
    return statistics.median(ns) / 1000


def bench(size: int, samples: int, rng: random.Random) -> dict[str, float]:
    leaves = [merkle.hash_leaf(i.to_bytes(8, "big")) for i in range(size)]
    tree, store = CompactRange(), DictNodeStore()
    clock = time.perf_counter_ns
    append_ns = []
    started = clock()
    for leaf in leaves:
        t0 = clock()
        tree.append(leaf, store.put)
        append_ns.append(clock() - t0)
    build_s = (clock() - started) / 1e9
    root = tree.root()

    reads = 0

    def get_node(level: int, index: int) -> Hash32:
        nonlocal reads
        reads += 1
        return store.get_node(level, index)

    most_reads = 0
    build_ns, verify_ns, both_ns = [], [], []
    for _ in range(samples):
        index = rng.randrange(size)
        reads = 0
        t0 = clock()
        proof = inclusion_proof(index, size, get_node)
        t1 = clock()
        merkle.verify_inclusion(leaves[index], index, size, proof, root)
        t2 = clock()
        build_ns.append(t1 - t0)
        verify_ns.append(t2 - t1)
        both_ns.append(t2 - t0)
        most_reads = max(most_reads, reads)

    roots = _past_roots(store.get_node, size, samples, rng)
    consistency_ns = []
    for size1, root1 in roots:
        reads = 0
        t0 = clock()
        proof = consistency_proof(size1, size, get_node)
        merkle.verify_consistency(size1, size, proof, root1, root)
        consistency_ns.append(clock() - t0)
        most_reads = max(most_reads, reads)

    return {
        "build_s": build_s,
        "append_us": _us(append_ns),
        "incl_build_us": _us(build_ns),
        "incl_verify_us": _us(verify_ns),
        "incl_both_us": _us(both_ns),
        "cons_both_us": _us(consistency_ns),
        "most_reads": most_reads,
        "stored_nodes": len(store),
    }


def _past_roots(
    get_node: Callable[[int, int], Hash32], size: int, samples: int, rng: random.Random
) -> list[tuple[int, Hash32]]:
    sizes = [rng.randint(1, size) for _ in range(samples)]
    return [(s, root_at(s, get_node)) for s in sizes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    print(
        f"{'leaves':>10} {'build s':>8} {'append':>8} {'incl build':>10} "
        f"{'incl verify':>11} {'incl both':>9} {'cons both':>9} {'max reads':>9}"
    )
    print(f"{'':>10} {'':>8} {'µs':>8} {'µs':>10} {'µs':>11} {'µs':>9} {'µs':>9} {'':>9}")
    for size in args.sizes:
        r = bench(size, args.samples, rng)
        print(
            f"{size:>10,} {r['build_s']:>8.2f} {r['append_us']:>8.2f} {r['incl_build_us']:>10.1f} "
            f"{r['incl_verify_us']:>11.1f} {r['incl_both_us']:>9.1f} {r['cons_both_us']:>9.1f} "
            f"{r['most_reads']:>9.0f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
