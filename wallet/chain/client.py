"""Settling on a Farthing deployment with the agent's key: :class:`VaultClient`.

:class:`VaultClient` adds the agent's key to :class:`~wallet.chain.reader.VaultReader`:
:meth:`~VaultClient.deposit` (EIP-2612 permit signed locally and
``Vault.depositWithPermit``: ONE transaction, no approve), :meth:`~VaultClient.redeem`
and :meth:`~VaultClient.redeem_batch` of withdrawal certificates. A certificate that is
already paid is *reported* (:attr:`RedeemStatus.ALREADY_REDEEMED`), never raised. And
:meth:`~VaultClient.slash_equivocation`: a member's two conflicting votes taken to the
Vault (the nodes do it themselves, ``node.evidence``).

Transactions are signed with :class:`~wallet.signing.PrivateKey` (EIP-1559; the key never
leaves it, :func:`~wallet.chain.transactions.sign_transaction`), nonces come from a local
counter checked against the node's pending count, gas is estimated (a revert found then
is raised before anything is sent) and receipts are awaited with a timeout. Reverts are
decoded to the contracts' custom errors by name
(:func:`~wallet.chain.reverts.decode_revert`).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from hexbytes import HexBytes
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import LogReceipt, TxParams, TxReceipt

from wallet.chain.logs import (
    DEPOSITED_TOPIC,
    REDEEMED_TOPIC,
    REDEMPTION_SKIPPED_TOPIC,
    SLASHED_TOPIC,
    DepositLog,
    _log_parts,
    _word_address,
    _word_uint,
    decode_deposit,
)
from wallet.chain.reader import _READ_ERRORS, DEFAULT_TIMEOUT, VaultReader
from wallet.chain.reverts import _reverted
from wallet.chain.transactions import permit_digest, sign_transaction
from wallet.codec import address_hex
from wallet.errors import (
    ChainConfigError,
    ChainUnavailable,
    ContractReverted,
    EncodingError,
    TransactionRejected,
    TransactionReverted,
    TransactionUnconfirmed,
)
from wallet.keccak import keccak256
from wallet.signing import PrivateKey
from wallet.types import UINT256_MAX, Address, Certificate, Equivocation, Hash32, Withdrawal
from wallet.vault import slash_arguments, vault_certificate

#: Seconds to wait for a sent transaction's receipt.
DEFAULT_RECEIPT_TIMEOUT: Final = 60.0
#: Lifetime of a deposit's permit, from the latest block's timestamp.
DEFAULT_PERMIT_LIFETIME: Final = 3_600
#: The gas limit sent is the estimate times this (state can move between the two).
GAS_MARGIN: Final = 1.25


@dataclass(frozen=True, slots=True)
class TransactionInfo:
    """A mined transaction: its hash, block, gas used and sender's nonce."""

    tx_hash: Hash32
    block_number: int
    gas_used: int
    nonce: int


@dataclass(frozen=True, slots=True)
class DepositResult:
    """A deposit made: the Vault's ``Deposited`` event and the transaction that did it."""

    deposit: DepositLog
    transaction: TransactionInfo

    @property
    def deposit_id(self) -> int:
        return self.deposit.deposit_id


class RedeemStatus(enum.Enum):
    REDEEMED = "redeemed"  # paid by this call's transaction
    ALREADY_REDEEMED = "already_redeemed"  # paid before (by anyone): nothing to do


@dataclass(frozen=True, slots=True)
class RedeemResult:
    """What became of one withdrawal certificate. ``transaction`` is the transaction that
    carried it (None when it was found already redeemed before sending)."""

    account: Address
    sequence: int
    status: RedeemStatus
    transaction: TransactionInfo | None

    @property
    def redeemed_now(self) -> bool:
        return self.status is RedeemStatus.REDEEMED


@dataclass(frozen=True, slots=True)
class SlashResult:
    """What :meth:`VaultClient.slash_equivocation` did: ``transaction`` is None when the
    member had no bond left to slash (slashed already, by this evidence or another, or
    never bonded; found before sending, or by a transaction that lost a race in its
    block): ``amount`` and ``reward`` are then 0."""

    member: Address
    amount: int
    reward: int
    transaction: TransactionInfo | None

    @property
    def slashed_now(self) -> bool:
        return self.transaction is not None


class VaultClient(VaultReader):
    """:class:`VaultReader` plus the agent's key: deposits, redemptions. Transactions are
    sent one at a time per client (nonces are local, checked against the node's pending
    count); each call waits for its receipt up to ``receipt_timeout`` seconds."""

    def __init__(
        self,
        rpc_url: str,
        vault: Address,
        key: PrivateKey,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT,
        poll_interval: float = 0.1,
    ) -> None:
        super().__init__(rpc_url, vault, timeout=timeout)
        if receipt_timeout <= 0 or poll_interval <= 0:
            raise ValueError("receipt_timeout and poll_interval must be > 0")
        self._key = key
        self._receipt_timeout = receipt_timeout
        self._poll_interval = poll_interval
        self._send_lock = asyncio.Lock()
        self._deposit_lock = asyncio.Lock()
        self._next_nonce: int | None = None

    async def __aenter__(self) -> VaultClient:
        return self

    @property
    def address(self) -> Address:
        """The agent's address (who signs and pays the gas)."""
        return self._key.address

    # ------------------------------------------------------------ deposits

    async def deposit(
        self,
        token: Address,
        amount: int,
        beneficiary: Address | None = None,
        *,
        deadline: int | None = None,
    ) -> DepositResult:
        """Deposits ``amount`` base units of ``token`` for ``beneficiary`` (default: this
        agent) in ONE transaction: an EIP-2612 permit for the Vault, signed here, and
        ``Vault.depositWithPermit``. ``deadline`` defaults to the latest block's time plus
        :data:`DEFAULT_PERMIT_LIFETIME`. Raises :class:`TransactionReverted` with the
        decoded error (``TokenNotRegistered``, ``ERC20InsufficientBalance``, ...)."""
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= UINT256_MAX:
            raise EncodingError("amount", "a deposit is an integer in 1..2**256-1 base units")
        async with self._deposit_lock:  # the token's permit nonce moves only when mined
            return await self._deposit(token, amount, beneficiary, deadline)

    async def _deposit(
        self, token: Address, amount: int, beneficiary: Address | None, deadline: int | None
    ) -> DepositResult:
        to = self.address if beneficiary is None else beneficiary
        contract = self._at(token, "FarthingToken")
        owner = address_hex(self.address)
        try:
            separator, nonce, now = await asyncio.gather(
                self._call(contract, "DOMAIN_SEPARATOR"),
                self._call(contract, "nonces", owner),
                self.timestamp(),
            )
        except ContractReverted as exc:
            raise ChainConfigError(
                f"{address_hex(token)} does not support EIP-2612 permit ({exc}): "
                "approve the Vault and call Vault.deposit instead"
            ) from exc
        if deadline is None:
            deadline = now + DEFAULT_PERMIT_LIFETIME
        digest = permit_digest(
            bytes(separator), self.address, self._vault, amount, int(nonce), deadline
        )
        signature = self._key.unsafe_sign_digest(digest)
        args = (
            address_hex(token),
            amount,
            address_hex(to),
            deadline,
            signature[64],
            signature[:32],
            signature[32:64],
        )
        receipt, info = await self._transact("depositWithPermit", args)
        deposits = [
            decode_deposit(*_log_parts(log))
            for log in receipt["logs"]
            if self._is_vault_log(log, DEPOSITED_TOPIC)
        ]
        if len(deposits) != 1:
            raise ChainConfigError(
                f"depositWithPermit 0x{info.tx_hash.hex()} succeeded without one Deposited "
                f"event: is {address_hex(self._vault)} a Farthing Vault?"
            )
        return DepositResult(deposits[0], info)

    # ------------------------------------------------------------ redemptions

    async def redeem(self, certificate: Certificate) -> RedeemResult:
        """Submits a Withdrawal certificate to ``Vault.redeem``. A withdrawal already paid
        (checked first with ``isRedeemed``, or found by the Vault's ``AlreadyRedeemed``)
        is reported as :attr:`RedeemStatus.ALREADY_REDEEMED`, not raised. Other refusals
        (``EpochExpired``, ``InsufficientQuorum``, a bad vote) raise
        :class:`TransactionReverted`; an epoch the Vault never had raises
        :class:`ContractReverted` (``UnknownEpoch``) from reading its committee."""
        account, sequence = _withdrawal_key(certificate)
        if await self.is_redeemed(account, sequence):
            return RedeemResult(account, sequence, RedeemStatus.ALREADY_REDEEMED, None)
        members = await self.committee_members(certificate.epoch)
        try:
            _, info = await self._transact("redeem", (vault_certificate(certificate, members),))
        except TransactionReverted as exc:
            # Mined but refused: another redeemer may have been first in the same block.
            mined_late = exc.tx_hash is not None and await self.is_redeemed(account, sequence)
            if exc.error != "AlreadyRedeemed" and not mined_late:
                raise
            found = None if exc.tx_hash is None else await self._info(exc.tx_hash)
            return RedeemResult(account, sequence, RedeemStatus.ALREADY_REDEEMED, found)
        return RedeemResult(account, sequence, RedeemStatus.REDEEMED, info)

    async def redeem_batch(self, certificates: Sequence[Certificate]) -> tuple[RedeemResult, ...]:
        """Redeems ``certificates`` in one ``Vault.redeemBatch`` transaction and reports
        each, in the given order: paid now, or already paid (before, or earlier in the
        batch; the Vault skips those with ``RedemptionSkipped``). Those found paid before
        sending are left out of the transaction; when none is left, nothing is sent. Any
        invalid certificate reverts the whole batch (:class:`TransactionReverted`)."""
        keys = [_withdrawal_key(c) for c in certificates]
        paid = await asyncio.gather(*(self.is_redeemed(a, s) for a, s in keys))
        pending = [c for c, done in zip(certificates, paid, strict=True) if not done]
        outcome: dict[tuple[Address, int], list[RedeemStatus]] = {}
        info: TransactionInfo | None = None
        if pending:
            args = []
            for certificate in pending:
                members = await self.committee_members(certificate.epoch)
                args.append(vault_certificate(certificate, members))
            receipt, info = await self._transact("redeemBatch", (args,))
            for log in receipt["logs"]:
                for topic, status in (
                    (REDEEMED_TOPIC, RedeemStatus.REDEEMED),
                    (REDEMPTION_SKIPPED_TOPIC, RedeemStatus.ALREADY_REDEEMED),
                ):
                    if self._is_vault_log(log, topic):
                        outcome.setdefault(_redemption_key(log), []).append(status)
        results = []
        for (account, sequence), done in zip(keys, paid, strict=True):
            if done:
                results.append(RedeemResult(account, sequence, RedeemStatus.ALREADY_REDEEMED, None))
                continue
            statuses = outcome.get((account, sequence))
            if not statuses:
                raise ChainConfigError(
                    f"redeemBatch left no Redeemed or RedemptionSkipped event for "
                    f"({address_hex(account)}, {sequence}): is {address_hex(self._vault)} "
                    "a Farthing Vault?"
                )
            results.append(RedeemResult(account, sequence, statuses.pop(0), info))
        return tuple(results)

    # ------------------------------------------------------------ slashing

    async def slash_equivocation(self, evidence: Equivocation) -> SlashResult:
        """Takes a member's two votes at one (account, sequence) to
        ``Vault.slashEquivocation``: its whole bond is taken, ``slashRewardBps`` of it paid
        to this key. A member with nothing left to slash (``NothingToSlash``, found when
        the gas is estimated: nothing is sent) is reported, not raised; evidence the
        Vault refuses otherwise (a bad vote, another domain) raises
        :class:`TransactionReverted`."""
        try:
            receipt, info = await self._transact("slashEquivocation", slash_arguments(evidence))
        except TransactionReverted as exc:
            if exc.error != "NothingToSlash":
                raise
            return SlashResult(evidence.member, 0, 0, None)
        for log in receipt["logs"]:
            if self._is_vault_log(log, SLASHED_TOPIC):
                data = bytes(log["data"])
                return SlashResult(
                    evidence.member,
                    _word_uint(data[:32], 256),
                    _word_uint(data[32:64], 256),
                    info,
                )
        raise ChainConfigError(
            f"slashEquivocation 0x{info.tx_hash.hex()} succeeded without a Slashed event: "
            f"is {address_hex(self._vault)} a Farthing Vault?"
        )

    # ------------------------------------------------------------ transactions

    async def wait_for_receipt(self, tx_hash: bytes, nonce: int | None = None) -> TxReceipt:
        """The receipt of ``tx_hash`` once it is mined, polling until ``receipt_timeout``
        (then :class:`TransactionUnconfirmed`). Transport errors while polling are waited
        out, not raised: the transaction is out there either way."""
        shown = "0x" + bytes(tx_hash).hex()
        deadline = time.monotonic() + self._receipt_timeout
        while True:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                pass
            except _READ_ERRORS:
                pass  # a blip of the RPC: try again until the deadline
            if time.monotonic() >= deadline:
                raise TransactionUnconfirmed(
                    f"transaction {shown} has no receipt after {self._receipt_timeout:g} s "
                    f"(via {self._shown_url}): it may still be mined; wait for it again "
                    "rather than sending anew",
                    tx_hash=bytes(tx_hash),
                    nonce=nonce,
                )
            await asyncio.sleep(self._poll_interval)

    async def _transact(
        self, function: str, args: tuple[Any, ...]
    ) -> tuple[TxReceipt, TransactionInfo]:
        """Builds, estimates, signs and sends ``Vault.<function>(*args)``, then waits for
        its receipt. A revert found by the estimate raises before anything is sent; a
        mined revert is decoded by replaying the call."""
        what = f"Vault.{function}"
        data = self._contract.encode_abi(function, args=list(args))
        sender = address_hex(self.address)
        call: TxParams = {"from": sender, "to": self._contract.address, "data": data}
        async with self._send_lock:
            chain_id = await self.chain_id()
            gas = await self._estimate(what, call)
            fees = await self._fees()
            nonce = await self._take_nonce()
            transaction = {
                "type": 2,
                "chainId": chain_id,
                "nonce": nonce,
                "to": self._contract.address,
                "value": 0,
                "data": data,
                "gas": gas,
                "accessList": [],
                **fees,
            }
            raw = sign_transaction(self._key, transaction)
            tx_hash = keccak256(raw)
            await self._send(what, raw, tx_hash, nonce)
        receipt = await self.wait_for_receipt(tx_hash, nonce)
        info = TransactionInfo(
            Hash32(tx_hash), int(receipt["blockNumber"]), int(receipt["gasUsed"]), nonce
        )
        if receipt["status"] != 1:
            raise await self._mined_revert(what, call, info)
        return receipt, info

    async def _estimate(self, what: str, call: TxParams) -> int:
        try:
            async with asyncio.timeout(self._timeout):
                estimate = await self._w3.eth.estimate_gas(call)
        except ContractLogicError as exc:
            raise _reverted(TransactionReverted, what, exc, tx_hash=None) from exc
        except _READ_ERRORS as exc:
            raise ChainUnavailable(
                f"{what}: estimating its gas via {self._shown_url}: {self._reason(exc)}"
            ) from exc
        return int(estimate * GAS_MARGIN)

    async def _fees(self) -> dict[str, int]:
        """EIP-1559 fees: the node's suggested tip, and a fee cap of twice the latest base
        fee plus the tip (room for six full blocks of base fee growth)."""
        block = await self._read("eth_getBlockByNumber(latest)", self._w3.eth.get_block("latest"))
        base = block.get("baseFeePerGas")
        if base is None:
            raise ChainConfigError(
                f"the chain at {self._shown_url} has no EIP-1559 base fee: this wallet "
                "sends only EIP-1559 transactions"
            )
        tip = int(await self._read("eth_maxPriorityFeePerGas", self._w3.eth.max_priority_fee))
        return {"maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}

    async def _take_nonce(self) -> int:
        """The next nonce: the local counter, or the node's pending count if that is
        higher (another program used the key)."""
        pending = await self._read(
            "eth_getTransactionCount",
            self._w3.eth.get_transaction_count(
                self._w3.to_checksum_address(address_hex(self.address)), "pending"
            ),
        )
        nonce = max(int(pending), self._next_nonce or 0)
        self._next_nonce = nonce + 1
        return nonce

    async def _send(self, what: str, raw: bytes, tx_hash: bytes, nonce: int) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._w3.eth.send_raw_transaction(raw)
        except Web3RPCError as exc:
            self._next_nonce = None  # the node did not take it: ask again next time
            raise TransactionRejected(
                f"{what}: the RPC node refused the transaction: {self._reason(exc)}"
            ) from exc
        except _READ_ERRORS as exc:
            self._next_nonce = None
            raise TransactionUnconfirmed(
                f"{what}: sending transaction 0x{tx_hash.hex()} via {self._shown_url} failed "
                f"({self._reason(exc)}); it may still have gone out: wait for it "
                "rather than sending anew",
                tx_hash=tx_hash,
                nonce=nonce,
            ) from exc

    async def _mined_revert(
        self, what: str, call: TxParams, info: TransactionInfo
    ) -> TransactionReverted:
        """The error of a transaction mined with status 0, its reason found by replaying
        the call (no node serves the exact state it met without tracing)."""
        # The state the transaction met lies between the two: after its block (a race
        # with an earlier transaction of the same block shows there), or before it.
        for at in (info.block_number, max(info.block_number - 1, 0)):
            try:
                async with asyncio.timeout(self._timeout):
                    await self._w3.eth.call(call, at)
            except ContractLogicError as exc:
                suffix = f" (in transaction 0x{info.tx_hash.hex()})"
                found = _reverted(TransactionReverted, what, exc, suffix, tx_hash=info.tx_hash)
                assert isinstance(found, TransactionReverted)
                return found
            except _READ_ERRORS:
                pass
        return TransactionReverted(
            f"{what} reverted in transaction 0x{info.tx_hash.hex()} (block "
            f"{info.block_number}); replaying it did not reproduce the reason",
            tx_hash=info.tx_hash,
        )

    async def _info(self, tx_hash: bytes) -> TransactionInfo:
        receipt = await self.wait_for_receipt(tx_hash)
        transaction = await self._read(
            "eth_getTransactionByHash", self._w3.eth.get_transaction(HexBytes(tx_hash))
        )
        return TransactionInfo(
            Hash32(bytes(tx_hash)),
            int(receipt["blockNumber"]),
            int(receipt["gasUsed"]),
            int(transaction["nonce"]),
        )

    def _is_vault_log(self, log: LogReceipt, topic: bytes) -> bool:
        return (
            str(log["address"]).lower() == str(self._contract.address).lower()
            and len(log["topics"]) > 0
            and bytes(log["topics"][0]) == topic
        )


def _withdrawal_key(certificate: Certificate) -> tuple[Address, int]:
    order = certificate.order
    if not isinstance(order, Withdrawal):
        raise EncodingError("order", "only a Withdrawal certificate is redeemable on chain")
    return order.owner, order.sequence


def _redemption_key(log: LogReceipt) -> tuple[Address, int]:
    """(account, sequence) of a ``Redeemed`` (sequence in data) or ``RedemptionSkipped``
    (sequence indexed) log."""
    topics = [bytes(t) for t in log["topics"]]
    account = _word_address(topics[1])
    sequence = _word_uint(topics[2], 64) if len(topics) > 2 else _word_uint(bytes(log["data"]), 64)
    return account, sequence
