"""The wallet client on a real devnet (anvil, 4 node processes): agent A deposits on
chain, pays agent B with the client; B sees it with wait_for_payment and its balance; the
receipt verifies offline; both histories verify."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from tests.node.devnet_helpers import balance, endpoints, send_transaction, wait_for
from wallet.client import Network, Wallet, receipt_from_json, receipt_to_json, verify_receipt
from wallet.codec import parse_address
from wallet.signing import PrivateKey
from wallet.types import Amount, Hash32

pytestmark = pytest.mark.integration
USDF = 10**6


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        yield net


def test_pay_receive_and_prove_on_a_devnet(devnet: Devnet, tmp_path: Path) -> None:
    m = devnet.manifest
    a, b = m.agents[0], m.agents[1]
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)
    send_transaction(w3, a.private_key, usdf.functions.approve(vault.address, 50 * USDF))
    send_transaction(w3, a.private_key, vault.functions.deposit(usdf.address, 50 * USDF, a.address))
    wait_for(lambda: all(balance(e, a.address, usdf.address) == 50 * USDF for e in endpoints(m)))

    network = Network.from_manifest(devnet.state_dir / "manifest.json")
    token = parse_address(m.contracts.stable)
    reference = Hash32(bytes.fromhex("ab" * 32))

    async def scenario() -> None:
        payer_key, payee_key = (
            PrivateKey.from_hex(a.private_key),
            PrivateKey.from_hex(b.private_key),
        )
        async with (
            Wallet(payer_key, network, data_dir=tmp_path / "a") as payer,
            Wallet(payee_key, network, data_dir=tmp_path / "b") as payee,
        ):
            waiting = asyncio.ensure_future(payee.wait_for_payment(reference=reference, timeout=20))
            receipt = await payer.pay(
                payee_key.address, Amount(7 * USDF), token, reference=reference
            )
            seen = await waiting
            assert seen == receipt.certificate
            assert await payee.balance(token) == 7 * USDF
            assert await payer.balance(token) == 43 * USDF

            # The receipt, kept as JSON, verifies with no network at all.
            kept = json.loads(json.dumps(receipt_to_json(receipt)))
            verify_receipt(receipt_from_json(kept), network.committee, network.domain)

            sent = (await payer.history()).sent
            received = (await payee.history()).received
            assert [c.order.amount for c in sent] == [7 * USDF]
            assert received == sent

            second = await payer.pay(payee_key.address, Amount(1), token)
            assert second.certificate.order.sequence == 1

    asyncio.run(scenario())


GUIDE = Path(__file__).resolve().parents[2] / "docs" / "agent-guide.md"
SECTION = "## Paying and receiving"
MANIFEST_LINE = 'MANIFEST = Path(".devnet/manifest.json")'
DATA_LINE = 'DATA = Path(".farthing-wallets")'


def test_the_guides_payment_example_runs(devnet: Devnet, tmp_path: Path) -> None:
    text = GUIDE.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    [code] = re.findall(r"```python\n(.*?)```", text[start : None if end < 0 else end], re.DOTALL)
    assert MANIFEST_LINE in code and DATA_LINE in code
    manifest = devnet.state_dir / "manifest.json"
    script = tmp_path / "example.py"
    script.write_text(
        code.replace(MANIFEST_LINE, f"MANIFEST = Path({str(manifest)!r})").replace(
            DATA_LINE, f"DATA = Path({str(tmp_path / 'data')!r})"
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=GUIDE.parents[1],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "with 3 votes" in done.stdout
    assert "bob received" in done.stdout
    assert "private_key" not in done.stdout + done.stderr
