"""The Vault's logs as values: topics, decoding, block ranges, the registered token set.

Pure: no I/O. The reader (:mod:`node.chain.reader`) fetches raw logs and hands their
topics and data here; what comes back is plain data the watcher and the node reason on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from eth_abi.abi import decode as abi_decode

from node.state.changes import ContractReceiveDeposit
from wallet.keccak import keccak256
from wallet.types import Address, Amount, Hash32

#: ``Deposited(uint64 indexed id, address indexed beneficiary, address indexed token,
#: uint256 amount, address depositor)``
DEPOSITED_TOPIC = keccak256(b"Deposited(uint64,address,address,uint256,address)")
TOKEN_REGISTERED_TOPIC = keccak256(b"TokenRegistered(address)")
TOKEN_DEREGISTERED_TOPIC = keccak256(b"TokenDeregistered(address)")

#: Blocks per ``eth_getLogs`` request. Hosted RPC providers commonly refuse wider ranges
#: (limits of 1,000 to 10,000 blocks are usual); anvil takes anything.
DEFAULT_MAX_SPAN = 2_000


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
    position: LogPosition

    @property
    def block_number(self) -> int:
        return self.position.block_number

    def change(self) -> ContractReceiveDeposit:
        """The state machine's input for this deposit."""
        return ContractReceiveDeposit(
            self.deposit_id, self.beneficiary, self.token, self.amount, self.block_number
        )


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
        amount, _depositor = abi_decode(["uint256", "address"], data)
    except Exception as exc:  # eth_abi raises several kinds for short or bad data
        raise LogDecodeError(f"Deposited data does not decode: {exc}") from exc
    return DepositLog(
        deposit_id=_word_uint(topics[1], 64),
        beneficiary=_word_address(topics[2]),
        token=_word_address(topics[3]),
        amount=Amount(amount),
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


def compute_registered_tokens(events: Iterable[TokenEvent]) -> frozenset[Address]:
    """The tokens registered after ``events`` (:func:`compute_token_sets`)."""
    return compute_token_sets(events)[0]
