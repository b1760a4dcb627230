"""Transactions signed locally with eth-account and sent in groups.

Nothing relies on the node's unlocked accounts, so the same code deploys to any EVM
chain. A group holds transactions that do not depend on each other: they go out back to
back with explicit nonces, then every receipt is awaited and must have status 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TimeExhausted, Web3Exception
from web3.types import Nonce, TxParams, TxReceipt, Wei

from devnet.errors import DeployError


class Buildable(Protocol):
    """A contract call or constructor of web3.py: it can build its transaction."""

    def build_transaction(self, transaction: TxParams | None = None) -> TxParams: ...


@dataclass(frozen=True, slots=True)
class Tx:
    """One transaction: who signs it, the call it makes, a label for error messages."""

    sender: LocalAccount
    call: Buildable
    label: str


class Transactor:
    """Signs and sends :class:`Tx` groups, keeping each sender's next nonce."""

    def __init__(self, w3: Web3, receipt_timeout: float = 60.0) -> None:
        self._w3 = w3
        self._chain_id = w3.eth.chain_id
        self._timeout = receipt_timeout
        self._nonces: dict[ChecksumAddress, int] = {}

    def _next_nonce(self, address: ChecksumAddress) -> Nonce:
        if address not in self._nonces:
            self._nonces[address] = self._w3.eth.get_transaction_count(address, "pending")
        nonce = self._nonces[address]
        self._nonces[address] = nonce + 1
        return Nonce(nonce)

    def _fees(self) -> TxParams:
        base = self._w3.eth.get_block("latest").get("baseFeePerGas")
        if base is None:  # a chain without EIP-1559
            return {"gasPrice": self._w3.eth.gas_price}
        tip = self._w3.eth.max_priority_fee
        return {"maxFeePerGas": Wei(2 * base + tip), "maxPriorityFeePerGas": tip}

    def send_group(self, txs: Sequence[Tx]) -> list[TxReceipt]:
        """Send ``txs`` (independent of each other), then wait for all their receipts.

        Raises :class:`DeployError` naming the transaction's label if one cannot be
        built (gas estimation reverts), sent, or mined with status 1."""
        fees = self._fees()
        hashes: list[HexBytes] = []
        for tx in txs:
            params: TxParams = {
                "from": tx.sender.address,
                "nonce": self._next_nonce(tx.sender.address),
                "chainId": self._chain_id,
                **fees,
            }
            try:
                built = tx.call.build_transaction(params)
                # eth-account types its argument as a plain dict, web3.py returns a TypedDict.
                signed = tx.sender.sign_transaction(cast("dict[str, Any]", built))
                hashes.append(self._w3.eth.send_raw_transaction(signed.raw_transaction))
            except (Web3Exception, ValueError) as exc:
                raise DeployError(f"{tx.label}: could not send the transaction: {exc}") from exc
        receipts = []
        for tx, tx_hash in zip(txs, hashes, strict=True):
            try:
                receipt = self._w3.eth.wait_for_transaction_receipt(
                    tx_hash, timeout=self._timeout, poll_latency=0.05
                )
            except TimeExhausted as exc:
                raise DeployError(
                    f"{tx.label}: transaction {tx_hash.to_0x_hex()} not mined "
                    f"after {self._timeout:g} s"
                ) from exc
            if receipt["status"] != 1:
                raise DeployError(
                    f"{tx.label}: transaction {tx_hash.to_0x_hex()} reverted "
                    f"in block {receipt['blockNumber']}"
                )
            receipts.append(receipt)
        return receipts

    def send(self, tx: Tx) -> TxReceipt:
        """Send one transaction and wait for its successful receipt."""
        return self.send_group([tx])[0]
