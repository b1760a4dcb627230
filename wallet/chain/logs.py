"""The Vault's logs as values (pure): the event topics, block ranges and their split
for ``eth_getLogs``, where a log is (:class:`LogPosition`), and the decoding of the
``Deposited`` and token (de)registration logs from raw topics and data
(:class:`LogDecodeError` when a log does not have the shape it claims). The registered
token set is replayed from the token events in chain order (:func:`compute_token_sets`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from eth_abi.abi import decode as abi_decode
from web3.types import LogReceipt

from wallet.codec import parse_address
from wallet.keccak import keccak256
from wallet.types import Address, Amount, Hash32

#: ``Deposited(uint64 indexed id, address indexed beneficiary, address indexed token,
#: uint256 amount, address depositor)``
DEPOSITED_TOPIC: Final = keccak256(b"Deposited(uint64,address,address,uint256,address)")
TOKEN_REGISTERED_TOPIC: Final = keccak256(b"TokenRegistered(address)")
TOKEN_DEREGISTERED_TOPIC: Final = keccak256(b"TokenDeregistered(address)")
#: ``Redeemed(address indexed account, uint64 sequence)``
REDEEMED_TOPIC: Final = keccak256(b"Redeemed(address,uint64)")
#: ``RedemptionSkipped(address indexed account, uint64 indexed sequence)``
REDEMPTION_SKIPPED_TOPIC: Final = keccak256(b"RedemptionSkipped(address,uint64)")
#: ``Slashed(address indexed member, address indexed reporter, uint256 amount,
#: uint256 reward)``.
SLASHED_TOPIC: Final = keccak256(b"Slashed(address,address,uint256,uint256)")


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


def _log_parts(log: LogReceipt) -> tuple[list[bytes], bytes, LogPosition]:
    position = LogPosition(
        int(log["blockNumber"]), Hash32(bytes(log["blockHash"])), int(log["logIndex"])
    )
    return [bytes(t) for t in log["topics"]], bytes(log["data"]), position
