"""One wallet process for tests/wallet/test_wallet_kill.py: opens the real
:class:`wallet.client.Wallet` on a data directory and makes one USDF payment, or resumes
the one a killed process left.

    python -m tests.wallet.wallet_pay_once MANIFEST DATA_DIR AGENT PAYEE AMOUNT
        [--resume] [--timeout SECONDS]

``AGENT`` is the index of the manifest's agent that pays (its key, a PUBLIC devnet test
key, is read from the manifest and never printed). Without ``--resume`` it pays
``AMOUNT`` USDF base units to ``PAYEE`` with ``pay_final``; with ``--resume`` it calls
``Wallet.resume()``. It prints one JSON line: the certificate's order digest and
sequence (``null`` when ``--resume`` found nothing to finish).

``FARTHING_TEST_DIE_AT=post_order`` (or ``post_certificate``): the process SIGKILLs
itself at its first request of that kind, that is once the journal holds the signed
order and before any node saw it (or once the certificate is formed and journaled and
before any node got it). ``FARTHING_TEST_GATE=DIR``: before it sends the signed order
to any node, it creates ``DIR/signed`` and waits until ``DIR/go`` exists (the test
stops two nodes meanwhile).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from wallet.client import HttpTransport, Network, Wallet
from wallet.client.transport import Delivery, Refusal
from wallet.codec import hash_hex, parse_address
from wallet.eip712 import order_digest
from wallet.signing import PrivateKey
from wallet.types import Amount, Certificate, SignedOrder, Vote

DIE_AT = os.environ.get("FARTHING_TEST_DIE_AT", "")
GATE = os.environ.get("FARTHING_TEST_GATE", "")


class DyingTransport(HttpTransport):
    """The HTTP transport, killing its own process at the first request named by
    ``FARTHING_TEST_DIE_AT``, and holding the orders at ``FARTHING_TEST_GATE``."""

    async def post_order(self, endpoint: str, signed: SignedOrder) -> Vote | Refusal:
        if DIE_AT == "post_order":
            os.kill(os.getpid(), signal.SIGKILL)
        if GATE:
            Path(GATE, "signed").touch()
            while not Path(GATE, "go").exists():
                await asyncio.sleep(0.02)
        return await super().post_order(endpoint, signed)

    async def post_certificate(self, endpoint: str, certificate: Certificate) -> Delivery | Refusal:
        if DIE_AT == "post_certificate":
            os.kill(os.getpid(), signal.SIGKILL)
        return await super().post_certificate(endpoint, certificate)


async def main(args: argparse.Namespace) -> dict[str, object]:
    data = json.loads(Path(args.manifest).read_text())
    network = Network.from_manifest_dict(data)
    key = PrivateKey.from_hex(data["agents"][args.agent]["private_key"])
    token = parse_address(data["contracts"]["stable"])
    transport = DyingTransport(timeout=args.timeout)
    try:
        async with Wallet(
            key, network, data_dir=args.data_dir, transport=transport, timeout=args.timeout
        ) as wallet:
            if args.resume:
                certificate = await wallet.resume()
            else:
                certificate = await wallet.pay_final(
                    parse_address(args.payee), Amount(args.amount), token
                )
    finally:
        await transport.close()
    if certificate is None:
        return {"digest": None, "sequence": None}
    digest = order_digest(network.domain, certificate.order)
    return {"digest": hash_hex(digest), "sequence": certificate.order.sequence}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("manifest")
    parser.add_argument("data_dir")
    parser.add_argument("agent", type=int)
    parser.add_argument("payee")
    parser.add_argument("amount", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--timeout", type=float, default=5.0)
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
    sys.exit(0)
