"""The chain side of Farthing: reading a deployment and settling on it (async, web3.py 8).

Everything starts from a JSON-RPC URL and the Vault's address:

* :class:`VaultReader` reads — the chain id and the EIP-712 :class:`~wallet.types.Domain`
  (checked: :meth:`VaultReader.check_vault`), the current epoch, each epoch's committee
  (members in the Vault's order, quorum, endpoints), the registered tokens with their
  ERC-20 symbol and decimals (replayed from the Vault's logs), deposits, redemption bits,
  and a Chainlink AggregatorV3 price reading (:meth:`VaultReader.price`: the Vault does
  not name its price feed, so the feed's address is given). It holds no key: a ledger
  node can use it as its chain reader.
* :class:`VaultClient` adds the agent's key: :meth:`~VaultClient.deposit` (EIP-2612
  permit signed locally and ``Vault.depositWithPermit``: ONE transaction, no approve),
  :meth:`~VaultClient.redeem` and :meth:`~VaultClient.redeem_batch` of withdrawal
  certificates. A certificate that is already paid is *reported*
  (:attr:`RedeemStatus.ALREADY_REDEEMED`), never raised.

Transactions are signed here with :class:`~wallet.signing.PrivateKey` (EIP-1559; the key
never leaves it, :func:`sign_transaction`), nonces come from a local counter checked
against the node's pending count, gas is estimated (a revert found then is raised before
anything is sent) and receipts are awaited with a timeout. Reverts are decoded to the
contracts' custom errors by name (:func:`decode_revert`).

Errors are :class:`~wallet.errors.ChainError`\\ s: :class:`~wallet.errors.ChainUnavailable`
(retryable), :class:`~wallet.errors.ChainConfigError`,
:class:`~wallet.errors.ContractReverted` / :class:`~wallet.errors.TransactionReverted`,
:class:`~wallet.errors.TransactionRejected`, :class:`~wallet.errors.TransactionUnconfirmed`.
The RPC URL may carry an API key: messages show it only as :func:`redact_url` does.

Example (devnet; see docs/agent-guide.md)::

    async with VaultClient(manifest.rpc_url, vault, key) as chain:
        done = await chain.deposit(usdf, 25 * 10**6)         # permit + deposit, one tx
        result = await chain.redeem(withdrawal_certificate)  # or ALREADY_REDEEMED
"""

from __future__ import annotations

import asyncio
import enum
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import aiohttp
from eth_abi.abi import decode as abi_decode
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractLogicError,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)
from web3.types import BlockIdentifier, FilterParams, LogReceipt, TxParams, TxReceipt

from contracts import load_artifact
from wallet.codec import address_hex, parse_address
from wallet.eip712 import DOMAIN_NAME, DOMAIN_VERSION
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
from wallet.types import (
    UINT256_MAX,
    Address,
    Amount,
    Certificate,
    Domain,
    Epoch,
    Hash32,
    Withdrawal,
)
from wallet.vault import vault_certificate

if TYPE_CHECKING:
    from wallet.policy import PriceReading

T = TypeVar("T")

#: Seconds a single JSON-RPC request may take.
DEFAULT_TIMEOUT: Final = 10.0
#: Seconds to wait for a sent transaction's receipt.
DEFAULT_RECEIPT_TIMEOUT: Final = 60.0
#: Blocks per ``eth_getLogs`` request. Hosted RPC providers commonly refuse wider ranges
#: (limits of 1,000 to 10,000 blocks are usual); anvil takes anything.
DEFAULT_MAX_SPAN: Final = 2_000
#: Lifetime of a deposit's permit, from the latest block's timestamp.
DEFAULT_PERMIT_LIFETIME: Final = 3_600
#: The gas limit sent is the estimate times this (state can move between the two).
GAS_MARGIN: Final = 1.25

_READ_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, Web3Exception, ValueError)


def redact_url(url: str) -> str:
    """``scheme://host:port`` of ``url``, with ``/…`` standing for a path, query or
    credentials it hides (they often hold an API key)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "<the configured RPC URL, which does not parse>"
    if not parts.scheme or not parts.hostname:
        return "<the configured RPC URL, which has no scheme or host>"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    hidden = parts.path not in ("", "/") or parts.query or parts.username or parts.password
    return f"{parts.scheme}://{host}{'' if port is None else f':{port}'}{'/…' if hidden else ''}"


# ================================================================ values


@dataclass(frozen=True, slots=True)
class CommitteeInfo:
    """The committee of ``epoch`` as the Vault holds it: ``members`` in the Vault's order
    (a certificate names its voters by these indexes), the ``quorum``, each member's
    endpoint (same order), and when the epoch was retired (0 while current)."""

    epoch: Epoch
    members: tuple[Address, ...]
    quorum: int
    endpoints: tuple[str, ...]
    retired_at: int

    def __post_init__(self) -> None:
        if len(self.endpoints) != len(self.members):
            raise ValueError("one endpoint per committee member")
        if not 0 < self.quorum <= len(self.members):
            raise ValueError(f"quorum {self.quorum} of {len(self.members)} members")
        if len(set(self.members)) != len(self.members):
            raise ValueError("committee members must be distinct")

    @property
    def is_current(self) -> bool:
        return self.retired_at == 0

    def endpoint_of(self, member: Address) -> str:
        """The endpoint of ``member`` (``ValueError`` if it is not a member)."""
        return self.endpoints[self.members.index(member)]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An ERC-20 token's address and metadata as the token reports them."""

    address: Address
    symbol: str
    decimals: int
    name: str


@dataclass(frozen=True, slots=True)
class FeedRound:
    """One ``latestRoundData()`` of a Chainlink AggregatorV3 feed: ``answer`` is the price
    scaled by ``10**decimals`` (devnet: 250000000 with 8 decimals is 2.50 USD per FAR),
    ``updated_at`` the Unix time of the round. The feed does not judge staleness: compare
    :meth:`age` with your own limit (the spending policy does, with
    :meth:`price_reading`)."""

    feed: Address
    description: str
    round_id: int
    answer: int
    decimals: int
    updated_at: int

    @property
    def value(self) -> Decimal:
        """The price as an exact decimal (``answer / 10**decimals``)."""
        return Decimal(self.answer).scaleb(-self.decimals)

    def age(self, now: float | None = None) -> int:
        """Seconds since the round was updated (``now`` defaults to the local clock)."""
        return int((time.time() if now is None else now) - self.updated_at)

    def price_reading(self) -> PriceReading:
        """The reading as :mod:`wallet.policy` values payments with."""
        from wallet.policy import PriceReading  # only this method needs the policy module

        return PriceReading(self.answer, self.decimals, self.updated_at)


@dataclass(frozen=True, slots=True)
class VaultInfo:
    """What :meth:`VaultReader.check_vault` found: the EIP-712 domain orders are signed in,
    the current epoch (0: no committee yet), the next deposit id, the head block, and the
    native (bond) token."""

    domain: Domain
    current_epoch: Epoch
    next_deposit_id: int
    head: int
    native_token: Address


@dataclass(frozen=True, slots=True)
class ChainOverview:
    """Everything :meth:`VaultReader.overview` reads in one go."""

    vault: VaultInfo
    committee: CommitteeInfo | None  # None before the first epoch
    tokens: tuple[TokenInfo, ...]  # registered now, sorted by symbol
    native: TokenInfo
    price: FeedRound | None  # None when no feed address was given

    @property
    def domain(self) -> Domain:
        return self.vault.domain


# ================================================================ logs (pure)

#: ``Deposited(uint64 indexed id, address indexed beneficiary, address indexed token,
#: uint256 amount, address depositor)``
DEPOSITED_TOPIC: Final = keccak256(b"Deposited(uint64,address,address,uint256,address)")
TOKEN_REGISTERED_TOPIC: Final = keccak256(b"TokenRegistered(address)")
TOKEN_DEREGISTERED_TOPIC: Final = keccak256(b"TokenDeregistered(address)")
#: ``Redeemed(address indexed account, uint64 sequence)``
REDEEMED_TOPIC: Final = keccak256(b"Redeemed(address,uint64)")
#: ``RedemptionSkipped(address indexed account, uint64 indexed sequence)``
REDEMPTION_SKIPPED_TOPIC: Final = keccak256(b"RedemptionSkipped(address,uint64)")


class LogDecodeError(ValueError):
    """A log does not have the shape of the Vault event it claims to be."""


@dataclass(frozen=True, slots=True, order=True)
class BlockRange:
    """Blocks ``first`` to ``last``, both included."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last:
            raise ValueError(f"not a block range: {self.first}..{self.last}")

    def __contains__(self, block: object) -> bool:
        return isinstance(block, int) and self.first <= block <= self.last


def split_range(first: int, last: int, max_span: int) -> Iterator[BlockRange]:
    """``first..last`` cut into consecutive ranges of at most ``max_span`` blocks (none
    when ``last < first``)."""
    if max_span < 1:
        raise ValueError(f"max_span must be >= 1, got {max_span}")
    start = max(first, 0)
    while start <= last:
        end = min(last, start + max_span - 1)
        yield BlockRange(start, end)
        start = end + 1


@dataclass(frozen=True, slots=True)
class LogPosition:
    """Where a log is: its block (number and hash) and its index in the block."""

    block_number: int
    block_hash: Hash32
    log_index: int


@dataclass(frozen=True, slots=True)
class DepositLog:
    """One ``Deposited`` log of the Vault, with where it was found."""

    deposit_id: int
    beneficiary: Address
    token: Address
    amount: Amount
    depositor: Address
    position: LogPosition

    @property
    def block_number(self) -> int:
        return self.position.block_number


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """A ``TokenRegistered`` (``registered``) or ``TokenDeregistered`` log."""

    token: Address
    registered: bool
    position: LogPosition


def _word_address(topic: bytes) -> Address:
    if len(topic) != 32 or any(topic[:12]):
        raise LogDecodeError(f"topic is not an ABI-encoded address: 0x{topic.hex()}")
    return Address(bytes(topic[12:]))


def _word_uint(topic: bytes, bits: int) -> int:
    value = int.from_bytes(topic, "big")
    if len(topic) != 32 or value >= 2**bits:
        raise LogDecodeError(f"topic is not an ABI-encoded uint{bits}: 0x{topic.hex()}")
    return value


def decode_deposit(topics: Sequence[bytes], data: bytes, position: LogPosition) -> DepositLog:
    """A ``Deposited`` log from its raw topics and data (:class:`LogDecodeError` if it is
    not one)."""
    if len(topics) != 4 or topics[0] != DEPOSITED_TOPIC:
        raise LogDecodeError("not a Deposited log (topic 0 or the topic count differs)")
    try:
        amount, depositor = abi_decode(["uint256", "address"], data)
    except Exception as exc:  # eth_abi raises several kinds for short or bad data
        raise LogDecodeError(f"Deposited data does not decode: {exc}") from exc
    return DepositLog(
        deposit_id=_word_uint(topics[1], 64),
        beneficiary=_word_address(topics[2]),
        token=_word_address(topics[3]),
        amount=Amount(amount),
        depositor=parse_address(depositor),
        position=position,
    )


def decode_token_event(topics: Sequence[bytes], position: LogPosition) -> TokenEvent:
    """A ``TokenRegistered`` or ``TokenDeregistered`` log from its raw topics."""
    if len(topics) != 2 or topics[0] not in (TOKEN_REGISTERED_TOPIC, TOKEN_DEREGISTERED_TOPIC):
        raise LogDecodeError("not a TokenRegistered or TokenDeregistered log")
    return TokenEvent(
        token=_word_address(topics[1]),
        registered=topics[0] == TOKEN_REGISTERED_TOPIC,
        position=position,
    )


def in_chain_order(events: Iterable[TokenEvent]) -> list[TokenEvent]:
    """``events`` sorted by block, then log index."""
    return sorted(events, key=lambda e: (e.position.block_number, e.position.log_index))


def compute_token_sets(
    events: Iterable[TokenEvent],
) -> tuple[frozenset[Address], frozenset[Address]]:
    """The tokens registered after ``events`` (in any order: they are replayed in chain
    order), and those deregistered (registered once, not now). The Vault refuses to
    register a registered token or deregister an unregistered one, so the last event of
    each token decides."""
    registered: set[Address] = set()
    deregistered: set[Address] = set()
    for event in in_chain_order(events):
        if event.registered:
            registered.add(event.token)
            deregistered.discard(event.token)
        else:
            registered.discard(event.token)
            deregistered.add(event.token)
    return frozenset(registered), frozenset(deregistered)


# ================================================================ reverts (pure)

_ERROR_SOURCES: Final = ("Vault", "FarthingUSD", "FarthingToken", "PriceFeed")


@dataclass(frozen=True, slots=True)
class RevertReason:
    """A decoded revert: the custom error's ``name`` and its named ``arguments``
    (addresses as EIP-55 text, bytes as ``0x`` hex)."""

    name: str
    arguments: tuple[tuple[str, object], ...]

    def __str__(self) -> str:
        shown = ", ".join(f"{n}={v}" for n, v in self.arguments)
        return f"{self.name}({shown})"


@cache
def _error_table() -> dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """selector → (name, argument names, argument types) of every custom error of the
    Farthing contracts, plus Solidity's ``Error(string)`` and ``Panic(uint256)``."""
    table: dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
        keccak256(b"Error(string)")[:4]: ("Error", ("message",), ("string",)),
        keccak256(b"Panic(uint256)")[:4]: ("Panic", ("code",), ("uint256",)),
    }
    for contract in _ERROR_SOURCES:
        for item in load_artifact(contract).abi:
            if item.get("type") != "error":
                continue
            types = tuple(str(i["type"]) for i in item["inputs"])
            names = tuple(str(i.get("name") or f"arg{k}") for k, i in enumerate(item["inputs"]))
            selector = keccak256(f"{item['name']}({','.join(types)})".encode())[:4]
            table[selector] = (str(item["name"]), names, types)
    return table


def _shown(kind: str, value: object) -> object:
    if kind == "address" and isinstance(value, str):
        return address_hex(parse_address(value.lower()))
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def decode_revert(data: bytes) -> RevertReason | None:
    """The custom error (of the Vault, the tokens or the price feed), revert string or
    panic that ``data`` encodes; None when its selector is unknown or it does not decode."""
    entry = _error_table().get(bytes(data[:4])) if len(data) >= 4 else None
    if entry is None:
        return None
    name, names, types = entry
    try:
        values = abi_decode(list(types), bytes(data[4:]))
    except Exception:  # eth_abi raises several kinds for short or bad data
        return None
    return RevertReason(
        name, tuple((n, _shown(t, v)) for n, t, v in zip(names, types, values, strict=True))
    )


def _revert_data(exc: ContractLogicError) -> bytes:
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


# ================================================================ signing (pure)

#: EIP-2612: ``Permit(address owner,address spender,uint256 value,uint256 nonce,uint256
#: deadline)``
PERMIT_TYPEHASH: Final = keccak256(
    b"Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
)


def permit_digest(
    domain_separator: bytes,
    owner: Address,
    spender: Address,
    value: int,
    nonce: int,
    deadline: int,
) -> Hash32:
    """The EIP-712 digest of an EIP-2612 ``Permit`` under the token's domain separator."""
    if len(domain_separator) != 32:
        raise EncodingError("domain_separator", "expected 32 bytes")
    words = [PERMIT_TYPEHASH, bytes(12) + owner, bytes(12) + spender]
    for field, number in (("value", value), ("nonce", nonce), ("deadline", deadline)):
        if not isinstance(number, int) or not 0 <= number <= UINT256_MAX:
            raise EncodingError(field, "expected an integer in 0..2**256-1")
        words.append(number.to_bytes(32, "big"))
    if len(owner) != 20 or len(spender) != 20:
        raise EncodingError("owner/spender", "expected 20-byte addresses")
    return Hash32(keccak256(b"\x19\x01" + bytes(domain_separator) + keccak256(b"".join(words))))


def sign_transaction(key: PrivateKey, transaction: dict[str, Any]) -> bytes:
    """The raw signed bytes of a typed (EIP-1559 or EIP-2930) transaction, signed with
    ``key`` (it never leaves :class:`~wallet.signing.PrivateKey`; eth-account only
    serializes and hashes). ``transaction`` is eth-account's dict form (``chainId``,
    ``nonce``, ``to``, ``data``, ``gas``, ``maxFeePerGas``, ``maxPriorityFeePerGas``,
    ``value``)."""
    unsigned = TypedTransaction.from_dict(dict(transaction))
    signature = key.unsafe_sign_digest(Hash32(bytes(unsigned.hash())))
    signed = (
        dict(transaction)
        | {
            "v": signature[64] - 27,  # typed transactions carry the y parity
            "r": int.from_bytes(signature[:32], "big"),
            "s": int.from_bytes(signature[32:64], "big"),
        }
    )
    return TypedTransaction.from_dict(signed).encode()


# ================================================================ results


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


# ================================================================ the reader


class VaultReader:
    """Async reads of one Vault (and the tokens and price feed around it) through one
    JSON-RPC URL. Use it as ``async with``, or call :meth:`close` (it owns an HTTP
    session). Every request is bounded by ``timeout`` seconds."""

    def __init__(self, rpc_url: str, vault: Address, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        self._url = rpc_url
        self._shown_url = redact_url(rpc_url)
        self._vault = vault
        self._timeout = timeout
        self._provider = AsyncHTTPProvider(
            rpc_url,
            request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout)},
            exception_retry_configuration=None,  # callers retry ChainUnavailable
        )
        self._w3 = AsyncWeb3(self._provider)
        self._contract = self._at(vault, "Vault")
        self._members: dict[int, tuple[Address, ...]] = {}  # an epoch's members never change
        self._chain_id: int | None = None
        self._deploy_block: int | None = None

    @property
    def vault(self) -> Address:
        return self._vault

    @property
    def shown_url(self) -> str:
        """The RPC URL as messages show it (:func:`redact_url`)."""
        return self._shown_url

    async def close(self) -> None:
        await self._provider.disconnect()

    async def __aenter__(self) -> VaultReader:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ the chain

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(await self._read("eth_chainId", self._w3.eth.chain_id))
        return self._chain_id

    async def head(self) -> int:
        """The latest block's number."""
        return int(await self._read("eth_blockNumber", self._w3.eth.block_number))

    async def timestamp(self, block: BlockIdentifier = "latest") -> int:
        """The Unix time of ``block`` (default: the latest)."""
        data = await self._read("eth_getBlockByNumber", self._w3.eth.get_block(block))
        return int(data["timestamp"])

    # ------------------------------------------------------------ the Vault

    async def domain(self) -> Domain:
        """The EIP-712 domain of the Vault, checked (:meth:`check_vault` without the rest)."""
        return (await self.check_vault()).domain

    async def check_vault(self, expected_chain_id: int | None = None) -> VaultInfo:
        """Checks that the RPC URL answers, serves ``expected_chain_id`` (if given) and that
        the Vault address holds a Farthing Vault whose EIP-712 domain is ("Farthing", "1",
        the chain id, the Vault). Raises :class:`ChainUnavailable` or
        :class:`ChainConfigError`, saying which setting is wrong."""
        chain_id = await self.chain_id()
        head = await self.head()
        if expected_chain_id is not None and chain_id != expected_chain_id:
            raise ChainConfigError(
                f"the JSON-RPC URL {self._shown_url} serves chain id {chain_id}, not the "
                f"expected {expected_chain_id}: point the RPC URL at the Vault's chain"
            )
        shown = address_hex(self._vault)
        code = await self._read("eth_getCode", self._w3.eth.get_code(self._contract.address))
        if not code:
            raise ChainConfigError(
                f"there is no contract at the Vault address {shown} on chain id {chain_id} "
                f"({self._shown_url}): check the Vault address (devnet: contracts.vault in "
                "the manifest) and that the RPC URL is the chain the Vault was deployed on"
            )
        try:
            fields = await self._view("eip712Domain")
            epoch = Epoch(int(await self._view("currentEpoch")))
            next_id = int(await self._view("nextDepositId"))
            native = parse_address(await self._view("bondToken"))
        except ContractReverted as exc:
            raise ChainConfigError(
                f"the contract at {shown} on chain id {chain_id} is not a Farthing Vault "
                f"({exc}): check the Vault address (devnet: contracts.vault in the manifest; "
                "the token and price-feed contracts are not the Vault)"
            ) from exc
        _, name, version, domain_chain, verifying, *_ = fields
        found = (name, version, int(domain_chain), str(verifying))
        expected = (DOMAIN_NAME, DOMAIN_VERSION, chain_id, self._contract.address)
        if found[:3] != expected[:3] or found[3].lower() != expected[3].lower():
            raise ChainConfigError(
                f"the contract at {shown} on chain id {chain_id} is not a Farthing Vault: "
                f"its EIP-712 domain is {found}, not {expected}: check the Vault address"
            )
        return VaultInfo(Domain(chain_id, self._vault), epoch, next_id, head, native)

    async def current_epoch(self, block: int | None = None) -> Epoch:
        """The current epoch (0 before the first committee)."""
        return Epoch(int(await self._view("currentEpoch", block=block)))

    async def next_deposit_id(self, block: int | None = None) -> int:
        """The id the Vault gives the next deposit (1 + the deposits made by ``block``)."""
        return int(await self._view("nextDepositId", block=block))

    async def native_token(self) -> Address:
        """The Vault's bond token (the native token, FAR)."""
        return parse_address(await self._view("bondToken"))

    async def is_token_registered(self, token: Address) -> bool:
        return bool(await self._view("isTokenRegistered", address_hex(token)))

    async def is_redeemed(self, account: Address, sequence: int) -> bool:
        """Whether the withdrawal (account, sequence) has been paid."""
        return bool(await self._view("isRedeemed", address_hex(account), sequence))

    async def epoch_acceptance(self, epoch: int) -> tuple[bool, int]:
        """Whether the Vault pays certificates of ``epoch`` now, and until when (0: while
        current; docs/protocol.md 4.2)."""
        accepted, until = await self._view("epochAcceptance", epoch)
        return bool(accepted), int(until)

    async def committee(self, epoch: int, block: int | None = None) -> CommitteeInfo:
        """The committee of ``epoch`` at ``block`` (default: the latest) with its current
        endpoints; :class:`ContractReverted` (``error == "UnknownEpoch"``) if none."""
        members, endpoints, quorum, retired_at = await self._view("committee", epoch, block=block)
        info = CommitteeInfo(
            Epoch(epoch),
            tuple(parse_address(m) for m in members),
            int(quorum),
            tuple(str(e) for e in endpoints),
            int(retired_at),
        )
        self._members[epoch] = info.members
        return info

    async def current_committee(self) -> CommitteeInfo | None:
        """The committee of the current epoch (None before the first)."""
        epoch = await self.current_epoch()
        return None if epoch == 0 else await self.committee(epoch)

    async def committee_members(self, epoch: int) -> tuple[Address, ...]:
        """The members of ``epoch`` in the Vault's order (cached: they never change)."""
        if epoch not in self._members:
            await self.committee(epoch)
        return self._members[epoch]

    # ------------------------------------------------------------ tokens and the feed

    async def token_info(self, token: Address) -> TokenInfo:
        """``token``'s ERC-20 symbol, decimals and name (:class:`ChainConfigError` if the
        address holds no contract that answers them)."""
        contract = self._at(token, "FarthingToken")
        try:
            symbol, decimals, name = await asyncio.gather(
                self._call(contract, "symbol"),
                self._call(contract, "decimals"),
                self._call(contract, "name"),
            )
        except ContractReverted as exc:
            raise ChainConfigError(
                f"{address_hex(token)} does not answer as an ERC-20 token ({exc})"
            ) from exc
        return TokenInfo(token, str(symbol), int(decimals), str(name))

    async def registered_tokens(
        self,
        from_block: int | None = None,
        to_block: int | None = None,
        *,
        max_span: int = DEFAULT_MAX_SPAN,
    ) -> tuple[TokenInfo, ...]:
        """The tokens the Vault takes deposits of now, with their metadata, sorted by
        symbol. Replayed from the Vault's token logs (:meth:`token_sets`) and then
        confirmed one by one with ``isTokenRegistered``."""
        registered, _ = await self.token_sets(from_block, to_block, max_span=max_span)
        checks = await asyncio.gather(*(self.is_token_registered(t) for t in registered))
        current = [t for t, ok in zip(sorted(registered), checks, strict=True) if ok]
        infos = await asyncio.gather(*(self.token_info(t) for t in current))
        return tuple(sorted(infos, key=lambda i: (i.symbol, i.address)))

    async def token_sets(
        self,
        from_block: int | None = None,
        to_block: int | None = None,
        *,
        max_span: int = DEFAULT_MAX_SPAN,
    ) -> tuple[frozenset[Address], frozenset[Address]]:
        """The registered and the deregistered tokens (:func:`compute_token_sets`), from
        the Vault's logs of ``from_block`` (default: :meth:`deploy_block`) to ``to_block``
        (default: the head)."""
        first = await self.deploy_block() if from_block is None else from_block
        last = await self.head() if to_block is None else to_block
        events: list[TokenEvent] = []
        for blocks in split_range(first, last, max_span):
            events.extend(await self.token_events(blocks))
        return compute_token_sets(events)

    async def deploy_block(self) -> int:
        """The block the Vault was deployed in, found by bisecting ``eth_getCode`` over
        history (cached). A node that cannot serve old state (not an archive node) gives
        0: log scans then start at genesis, which is slow but right."""
        if self._deploy_block is None:
            low, high = 0, await self.head()
            try:
                while low < high:
                    middle = (low + high) // 2
                    code = await self._read(
                        f"eth_getCode at block {middle}",
                        self._w3.eth.get_code(self._contract.address, middle),
                    )
                    if code:
                        high = middle
                    else:
                        low = middle + 1
            except ChainUnavailable:
                low = 0
            self._deploy_block = low
        return self._deploy_block

    async def price(self, feed: Address) -> FeedRound:
        """The latest round of the AggregatorV3 price feed at ``feed`` (the USD price of
        the native token on a Farthing deployment; devnet: contracts.price_feed)."""
        contract = self._at(feed, "PriceFeed")
        try:
            (
                (round_id, answer, _started, updated_at, _answered),
                decimals,
                description,
            ) = await asyncio.gather(
                self._call(contract, "latestRoundData"),
                self._call(contract, "decimals"),
                self._call(contract, "description"),
            )
        except ContractReverted as exc:
            raise ChainConfigError(
                f"{address_hex(feed)} does not answer as an AggregatorV3 price feed ({exc})"
            ) from exc
        return FeedRound(
            feed, str(description), int(round_id), int(answer), int(decimals), int(updated_at)
        )

    async def overview(self, price_feed: Address | None = None) -> ChainOverview:
        """The chain id and domain (checked), the current epoch and committee with its
        endpoints, the registered tokens with their metadata, the native token and, when
        ``price_feed`` is given, its price reading."""
        info = await self.check_vault()
        committee, tokens, native, price = await asyncio.gather(
            self.current_committee(),
            self.registered_tokens(),
            self.token_info(info.native_token),
            _maybe(None if price_feed is None else self.price(price_feed)),
        )
        return ChainOverview(info, committee, tokens, native, price)

    # ------------------------------------------------------------ logs

    async def deposit_logs(self, blocks: BlockRange) -> tuple[DepositLog, ...]:
        """The ``Deposited`` logs of the Vault in ``blocks`` (keep the range within the
        provider's limit, :data:`DEFAULT_MAX_SPAN`)."""
        raw = await self._logs(blocks, [DEPOSITED_TOPIC])
        return tuple(_decoded(log, decode_deposit) for log in raw)

    async def token_events(self, blocks: BlockRange) -> tuple[TokenEvent, ...]:
        raw = await self._logs(blocks, [TOKEN_REGISTERED_TOPIC, TOKEN_DEREGISTERED_TOPIC])
        return tuple(_decoded(log, lambda t, _d, p: decode_token_event(t, p)) for log in raw)

    async def _logs(self, blocks: BlockRange, topics: Iterable[bytes]) -> list[LogReceipt]:
        params: FilterParams = {
            "address": self._contract.address,
            "fromBlock": blocks.first,
            "toBlock": blocks.last,
            "topics": [["0x" + t.hex() for t in topics]],
        }
        what = f"eth_getLogs of blocks {blocks.first}..{blocks.last}"
        logs = await self._read(what, self._w3.eth.get_logs(params))
        return [log for log in logs if not log.get("removed", False)]

    # ------------------------------------------------------------ plumbing

    def _at(self, address: Address, artifact: str) -> AsyncContract:
        return self._w3.eth.contract(
            address=self._w3.to_checksum_address(address_hex(address)),
            abi=load_artifact(artifact).abi,
        )

    async def _read(self, what: str, request: Awaitable[T]) -> T:
        """``request``, bounded by the timeout; a revert becomes :class:`ContractReverted`
        (decoded), anything else of the transport :class:`ChainUnavailable`."""
        try:
            async with asyncio.timeout(self._timeout):
                return await request
        except ContractLogicError as exc:
            raise _reverted(ContractReverted, what, exc) from exc
        except BadFunctionCallOutput as exc:
            raise ContractReverted(f"{what}: the contract returned nothing usable") from exc
        except _READ_ERRORS as exc:
            raise ChainUnavailable(f"{what} via {self._shown_url}: {self._reason(exc)}") from exc

    async def _call(
        self, contract: AsyncContract, name: str, *args: Any, block: int | None = None
    ) -> Any:
        call = contract.get_function_by_name(name)(*args).call(
            block_identifier="latest" if block is None else block
        )
        shown_args = ", ".join(str(a) for a in args)
        at = "" if block is None else f" at block {block}"
        where = (
            "Vault" if contract is self._contract else address_hex(parse_address(contract.address))
        )
        return await self._read(f"{where}.{name}({shown_args}){at}", call)

    async def _view(self, name: str, *args: Any, block: int | None = None) -> Any:
        return await self._call(self._contract, name, *args, block=block)

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, aiohttp.ClientResponseError):
            return f"HTTP {exc.status} {exc.message}"
        if isinstance(exc, TimeoutError):
            return f"no answer within {self._timeout:g} s"
        text = str(exc) or type(exc).__name__
        return text.replace(self._url, self._shown_url)


async def _maybe(request: Awaitable[T] | None) -> T | None:
    return None if request is None else await request


def _log_parts(log: LogReceipt) -> tuple[list[bytes], bytes, LogPosition]:
    position = LogPosition(
        int(log["blockNumber"]), Hash32(bytes(log["blockHash"])), int(log["logIndex"])
    )
    return [bytes(t) for t in log["topics"]], bytes(log["data"]), position


def _decoded(log: LogReceipt, decode: Callable[[list[bytes], bytes, LogPosition], T]) -> T:
    """``log`` decoded; a :class:`LogDecodeError` names the log's block."""
    topics, data, position = _log_parts(log)
    try:
        return decode(topics, data, position)
    except LogDecodeError as exc:
        raise LogDecodeError(
            f"a Vault log in block {position.block_number} does not decode ({exc})"
        ) from exc


def _reverted(
    kind: type[ContractReverted],
    what: str,
    exc: ContractLogicError,
    suffix: str = "",
    **extra: Any,
) -> ContractReverted:
    data = _revert_data(exc)
    reason = decode_revert(data)
    if reason is not None:
        shown = str(reason)
    elif data:
        shown = f"an unknown error 0x{data[:4].hex()}"
    else:
        shown = exc.message or "reverted without a reason"
    return kind(
        f"{what} reverted: {shown}{suffix}",
        error=None if reason is None else reason.name,
        arguments=None if reason is None else dict(reason.arguments),
        data=data,
        **extra,
    )


# ================================================================ the client (with a key)


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
