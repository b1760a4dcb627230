"""The client of the node network (issue 4): pay, receive, prove, recover.

One façade, :class:`Wallet`, over one account::

    from wallet.client import Network, Wallet, verify_receipt
    from wallet.signing import PrivateKey

    network = Network.from_manifest(".devnet/manifest.json")
    async with Wallet(PrivateKey.from_hex(key_hex), network, data_dir="~/.farthing") as w:
        receipt = await w.pay(payee, Amount(1_500_000), usdf, reference=quote_hash)
    verify_receipt(receipt, network.committee, network.domain)   # offline

Modules: :mod:`~wallet.client.network` (domain, committee, endpoints),
:mod:`~wallet.client.transport` (the node API, :class:`HttpTransport`),
:mod:`~wallet.client.votes` (concurrent quorum rounds), :mod:`~wallet.client.journal`
(the durable order journal), :mod:`~wallet.client.receipts` (receipts and their offline
verification), :mod:`~wallet.client.reading` (balances, history, receipts, incoming
payments), :mod:`~wallet.client.spending` (a spending policy enforced before signing),
:mod:`~wallet.client.wallet` (paying, withdrawing, recovering). The agent's one-stop
façade over this and the chain is :mod:`wallet.agent`. Errors are in
:mod:`wallet.errors`.
"""

from wallet.client.journal import Journal
from wallet.client.network import Committee, Network
from wallet.client.reading import History, Reader
from wallet.client.receipts import (
    Receipt,
    receipt_from_json,
    receipt_to_json,
    verify_certificate,
    verify_receipt,
)
from wallet.client.spending import CachedPrice, PriceSource, Spending
from wallet.client.transport import HttpTransport, Transport
from wallet.client.wallet import BeforeSign, PaymentRequest, Recovery, Wallet

__all__ = [
    "BeforeSign",
    "CachedPrice",
    "Committee",
    "History",
    "HttpTransport",
    "Journal",
    "Network",
    "PaymentRequest",
    "PriceSource",
    "Reader",
    "Receipt",
    "Recovery",
    "Spending",
    "Transport",
    "Wallet",
    "receipt_from_json",
    "receipt_to_json",
    "verify_certificate",
    "verify_receipt",
]
