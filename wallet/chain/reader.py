"""Reading a Farthing deployment (async, web3.py 8): :class:`VaultReader` and what it reads.

:class:`VaultReader` reads the chain id and the EIP-712 :class:`~wallet.types.Domain`
(checked: :meth:`VaultReader.check_vault`), the current epoch, each epoch's committee
(members in the Vault's order, quorum, endpoints), the registered tokens with their
ERC-20 symbol and decimals (replayed from the Vault's logs), deposits, redemption bits,
and a Chainlink AggregatorV3 price reading (:meth:`VaultReader.price`: the Vault does
not name its price feed, so the feed's address is given). It holds no key: a ledger
node can use it as its chain reader.

The RPC URL may carry an API key: messages show it only as :func:`redact_url` does.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import aiohttp
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, Web3Exception
from web3.types import BlockIdentifier, FilterParams, LogReceipt

from contracts import load_artifact
from wallet.chain.logs import (
    DEPOSITED_TOPIC,
    TOKEN_DEREGISTERED_TOPIC,
    TOKEN_REGISTERED_TOPIC,
    BlockRange,
    DepositLog,
    LogDecodeError,
    LogPosition,
    TokenEvent,
    _log_parts,
    compute_token_sets,
    decode_deposit,
    decode_token_event,
    split_range,
)
from wallet.chain.reverts import _reverted
from wallet.codec import address_hex, parse_address
from wallet.eip712 import DOMAIN_NAME, DOMAIN_VERSION
from wallet.errors import ChainConfigError, ChainUnavailable, ContractReverted
from wallet.types import Address, Domain, Epoch, Hash32

if TYPE_CHECKING:
    from wallet.policy import PriceReading

T = TypeVar("T")

#: Seconds a single JSON-RPC request may take.
DEFAULT_TIMEOUT: Final = 10.0
#: Blocks per ``eth_getLogs`` request. Hosted RPC providers commonly refuse wider ranges
#: (limits of 1,000 to 10,000 blocks are usual); anvil takes anything.
DEFAULT_MAX_SPAN: Final = 2_000

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
        # Polled several times a second by nodes: one raw JSON-RPC request on a kept-alive
        # connection instead of web3.py's request stack (docs/performance.md).
        self._session: aiohttp.ClientSession | None = None
        self._rpc_id = 0

    @property
    def vault(self) -> Address:
        return self._vault

    @property
    def shown_url(self) -> str:
        """The RPC URL as messages show it (:func:`redact_url`)."""
        return self._shown_url

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
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
        return _quantity(await self._read("eth_blockNumber", self._raw("eth_blockNumber")))

    async def block_hash(self, number: int) -> Hash32 | None:
        """The hash of block ``number`` (None when the chain does not reach it yet)."""
        what = f"eth_getBlockByNumber({number})"
        block = await self._read(what, self._raw("eth_getBlockByNumber", hex(number), False))
        if block is None:
            return None
        found = block.get("hash") if isinstance(block, dict) else None
        if not isinstance(found, str) or not _HASH.fullmatch(found):
            raise ChainUnavailable(f"{what} via {self._shown_url}: no block hash in {block!r}")
        return Hash32(bytes.fromhex(found[2:]))

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

    async def _raw(self, method: str, *params: Any) -> Any:
        """One JSON-RPC request without web3.py: its ``result``; an error reply raises
        ValueError (one of :data:`_READ_ERRORS`: :meth:`_read` makes it ChainUnavailable)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        self._rpc_id += 1
        body = {"jsonrpc": "2.0", "id": self._rpc_id, "method": method, "params": list(params)}
        async with self._session.post(self._url, json=body) as reply:
            reply.raise_for_status()
            answer = await reply.json(content_type=None)
        if not isinstance(answer, dict) or "result" not in answer:
            error = answer.get("error") if isinstance(answer, dict) else None
            raise ValueError(f"the node answered {error or answer!r}")
        return answer["result"]

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


_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def _quantity(value: Any) -> int:
    """A JSON-RPC quantity (``0x``-prefixed hex) as an int; :class:`ChainUnavailable` if
    the node sent something else (a broken or hostile RPC endpoint)."""
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise ChainUnavailable(f"the chain node sent {value!r} for a block number")
    return int(value, 16)


async def _maybe(request: Awaitable[T] | None) -> T | None:
    return None if request is None else await request


def _decoded(log: LogReceipt, decode: Callable[[list[bytes], bytes, LogPosition], T]) -> T:
    """``log`` decoded; a :class:`LogDecodeError` names the log's block."""
    topics, data, position = _log_parts(log)
    try:
        return decode(topics, data, position)
    except LogDecodeError as exc:
        raise LogDecodeError(
            f"a Vault log in block {position.block_number} does not decode ({exc})"
        ) from exc
