"""Network partitions: a fault-injecting TCP proxy (tests/support/tcp_proxy.py) sits on
every directed link of a 4-node devnet: wallets → node i, and node i → node j (each node
is started with ``--peer`` URLs through its own links). The chain stays reachable.

* One node cut off: payments go on with the other three (the quorum); healed, the node
  catches up and agrees with them on every balance and every log entry.
* Two nodes cut off: no quorum, so payments stop with a clear, retryable error and
  nothing is applied anywhere; healed, the wallet finishes the same payment (same
  order, same sequence) and all four agree again. Per token, the balances always add up
  to the deposits.

Why a proxy and not network namespaces: the nodes, the wallets and anvil all live on
loopback here, and a proxy per link cuts exactly the links the test names without root
or a bridge, the same way on every machine (docs/threat-model.md, "Partitions").
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devnet import Devnet, DevnetConfig
from tests.node.adversity import agree, balances, deposit_stable, log_size, nodes_running
from tests.node.devnet_helpers import call, endpoints, wait_for
from tests.support.tcp_proxy import FaultyNetwork
from wallet.client import Wallet
from wallet.client.network import Network
from wallet.codec import address_hex, parse_address
from wallet.errors import QuorumUnavailable
from wallet.signing import PrivateKey
from wallet.types import Address, Amount, Certificate

pytestmark = pytest.mark.integration

USDF = 10**6
PAYERS = 3
DEPOSIT = 50 * USDF
WALLET_TIMEOUT = 2.0  # a cut node answers nothing: each round waits this long for it


@dataclass
class Partitioned:
    devnet: Devnet
    links: FaultyNetwork
    nodes: list[str]  # the nodes' own URLs (the test's view, never cut)
    network: Network  # the wallets' view: every node through its wallet link
    keys: list[PrivateKey]
    token: Address

    def links_of(self, *indexes: int) -> list[str]:
        """Every link to or from these nodes (the wallets' included)."""
        wanted = {str(i) for i in indexes}
        return [name for name in self.links.names() if wanted & set(name.split(">"))]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Partitioned]:
    with (
        Devnet.up(DevnetConfig(start_nodes=False, agents=PAYERS)) as devnet,
        FaultyNetwork() as links,
    ):
        m = devnet.manifest
        nodes = endpoints(m)
        ports = [int(url.rsplit(":", 1)[1]) for url in nodes]
        for i, port in enumerate(ports):
            links.add(f"w>{i}", port)
            for j in range(len(ports)):
                if j != i:
                    links.add(f"{j}>{i}", port)
        peers = {
            i: [a for j in range(len(nodes)) if j != i for a in ("--peer", links.url(f"{i}>{j}"))]
            for i in range(len(nodes))
        }
        with nodes_running(devnet, extra_args=peers):
            direct = Network.from_manifest(devnet.state_dir / "manifest.json")
            network = dataclasses.replace(
                direct, endpoints=tuple(links.url(f"w>{i}") for i in range(len(nodes)))
            )
            keys = [PrivateKey.from_hex(agent.private_key) for agent in m.agents]  # PUBLIC
            yield Partitioned(
                devnet, links, nodes, network, keys, parse_address(m.contracts.stable)
            )


def _balances(p: Partitioned, url: str) -> list[int]:
    return balances(url, [k.address for k in p.keys], p.token)


def _agree(p: Partitioned) -> bool:
    return agree(p.nodes, [k.address for k in p.keys], p.token)


async def _pay_round(p: Partitioned, wallets: list[Wallet], amount: int) -> list[Certificate]:
    """Every wallet pays the next payer ``amount``, all at once."""
    return list(
        await asyncio.gather(
            *(
                w.pay_final(p.keys[(i + 1) % PAYERS].address, Amount(amount), p.token)
                for i, w in enumerate(wallets)
            )
        )
    )


async def _scenario(p: Partitioned, journal: Path) -> None:
    wallets = [
        Wallet(k, p.network, data_dir=journal / str(i), timeout=WALLET_TIMEOUT)
        for i, k in enumerate(p.keys)
    ]
    for w in wallets:
        w.open()
    try:
        await _pay_round(p, wallets, 1_000)
        wait_for(lambda: _agree(p), timeout=20)

        # One node cut off: the other three are a quorum; payments go on.
        p.links.cut(p.links_of(3))
        size_at_cut = log_size(p.nodes[3])
        held = _balances(p, p.nodes[3])
        for round_ in range(3):
            certificates = await _pay_round(p, wallets, 2_000 + round_)
            assert all(len(c.votes) == 3 for c in certificates)
            assert all(p.network.committee.members[3] not in dict(c.votes) for c in certificates)
        assert log_size(p.nodes[3]) == size_at_cut and _balances(p, p.nodes[3]) == held
        assert log_size(p.nodes[0]) == size_at_cut + 3 * PAYERS

        # Healed: it catches up (pull every 2 s) and agrees.
        p.links.heal(p.links_of(3))
        wait_for(lambda: _agree(p), timeout=30)

        # Two nodes cut off: no quorum. A clear, retryable error; nothing applied.
        p.links.cut(p.links_of(2, 3))
        before = {url: (log_size(url), _balances(p, url)) for url in p.nodes}
        with pytest.raises(QuorumUnavailable) as caught:
            await wallets[0].pay_final(p.keys[1].address, Amount(7_777), p.token)
        message = str(caught.value)
        assert caught.value.retryable and "no quorum of nodes answered" in message
        assert p.network.endpoints[2] in message and p.network.endpoints[3] in message
        assert {url: (log_size(url), _balances(p, url)) for url in p.nodes} == before
        # The two reachable nodes hold the payer's order (their vote's lock), nothing more.
        _, account = call(f"{p.nodes[0]}/v1/accounts/{address_hex(p.keys[0].address)}")
        assert account["pending_order"]["order"]["amount"] == "7777"

        # Healed: the wallet finishes that same payment, not a new one.
        p.links.heal(p.links_of(2, 3))
        finished = await wallets[0].resume()
        assert finished is not None
        assert finished.order.amount == 7_777 and finished.order.payee == p.keys[1].address
        assert finished.order.sequence == account["next_sequence"]
        wait_for(lambda: _agree(p), timeout=30)
        assert log_size(p.nodes[2]) == before[p.nodes[0]][0] + 1
    finally:
        for w in wallets:
            await w.close()


def test_one_node_cut_off_then_two(net: Partitioned, tmp_path: Path) -> None:
    deposit_stable(net.devnet.manifest, DEPOSIT)
    asyncio.run(_scenario(net, tmp_path))
    # Nothing lost, nothing created: the ledger's balances add up to the deposits.
    for url in net.nodes:
        assert sum(_balances(net, url)) == PAYERS * DEPOSIT
    forwarded, dropped = net.links.stats("w>3")
    assert forwarded > 0 and dropped > 0  # the cut really dropped the wallets' traffic
