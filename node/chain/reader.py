"""Reading the Vault through a JSON-RPC URL (any EVM chain): the node's chain I/O.

Every read is bounded by a timeout and fails with :class:`~node.errors.ChainReadError`
(transient: the caller retries) or its :class:`~node.errors.VaultCallError` (the Vault
reverted or is not there). :meth:`ChainReader.check_vault` is the start-up check: it turns
those into :class:`~node.errors.NodeConfigError`\\ s that say which setting is wrong.

The RPC URL may carry an API key (``https://…/v3/<key>``): messages show only its scheme,
host and port (:func:`redact_url`).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar

import aiohttp
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, Web3Exception
from web3.types import FilterParams, LogReceipt

from contracts import load_artifact
from node.chain.logs import (
    DEFAULT_MAX_SPAN,
    DEPOSITED_TOPIC,
    TOKEN_DEREGISTERED_TOPIC,
    TOKEN_REGISTERED_TOPIC,
    BlockRange,
    DepositLog,
    LogDecodeError,
    LogPosition,
    TokenEvent,
    compute_token_sets,
    decode_deposit,
    decode_token_event,
    split_range,
)
from node.errors import (
    ChainReadError,
    RpcUnreachableError,
    UnknownEpochError,
    VaultCallError,
    VaultNotFoundError,
    WrongChainError,
)
from node.state.records import Committee
from wallet.codec import address_hex, parse_address
from wallet.keccak import keccak256
from wallet.types import Address, Domain, Epoch, Hash32

T = TypeVar("T")

#: The Vault's EIP-712 domain name and version (docs/protocol.md section 1).
VAULT_DOMAIN_NAME: Final = "Farthing"
VAULT_DOMAIN_VERSION: Final = "1"
DEFAULT_TIMEOUT = 10.0

_UNKNOWN_EPOCH_SELECTOR = keccak256(b"UnknownEpoch(uint64)")[:4].hex()
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
    """An epoch's committee as the Vault holds it, with each member's endpoint (same
    order as ``committee.members``) and when the epoch was retired (0 while current)."""

    committee: Committee
    endpoints: tuple[str, ...]
    retired_at: int

    def __post_init__(self) -> None:
        if len(self.endpoints) != len(self.committee.members):
            raise ValueError("one endpoint per committee member")

    def endpoint_of(self, member: Address) -> str:
        return self.endpoints[self.committee.members.index(member)]


@dataclass(frozen=True, slots=True)
class VaultInfo:
    """What :meth:`ChainReader.check_vault` found: the EIP-712 domain the node signs in,
    the current epoch (0: no committee yet), the next deposit id and the head."""

    domain: Domain
    current_epoch: Epoch
    next_deposit_id: int
    head: int


class ChainReader:
    """Async reads of one Vault through one JSON-RPC URL. Use it as ``async with``, or
    call :meth:`close` (it owns an HTTP session)."""

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
            exception_retry_configuration=None,  # the watcher retries, with back-off
        )
        self._w3 = AsyncWeb3(self._provider)
        self._contract = self._w3.eth.contract(
            address=self._w3.to_checksum_address(address_hex(vault)),
            abi=load_artifact("Vault").abi,
        )

    @property
    def vault(self) -> Address:
        return self._vault

    @property
    def shown_url(self) -> str:
        """The RPC URL as messages show it (:func:`redact_url`)."""
        return self._shown_url

    async def close(self) -> None:
        await self._provider.disconnect()

    async def __aenter__(self) -> ChainReader:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ plain reads

    async def chain_id(self) -> int:
        return int(await self._read("eth_chainId", self._w3.eth.chain_id))

    async def head(self) -> int:
        """The latest block's number."""
        return int(await self._read("eth_blockNumber", self._w3.eth.block_number))

    async def current_epoch(self, block: int | None = None) -> Epoch:
        return Epoch(int(await self._view("currentEpoch", block)))

    async def next_deposit_id(self, block: int | None = None) -> int:
        """The id the Vault gives the next deposit (1 + the deposits made by ``block``)."""
        return int(await self._view("nextDepositId", block))

    async def is_token_registered(self, token: Address) -> bool:
        return bool(await self._view("isTokenRegistered", None, address_hex(token)))

    async def committee(self, epoch: int, block: int | None = None) -> CommitteeInfo:
        """The committee of ``epoch`` at ``block`` (default: the latest), with its
        current endpoints (:class:`UnknownEpochError` if there is none)."""
        members, endpoints, quorum, retired_at = await self._view("committee", block, epoch)
        return CommitteeInfo(
            Committee(Epoch(epoch), tuple(parse_address(m) for m in members), int(quorum)),
            tuple(str(e) for e in endpoints),
            int(retired_at),
        )

    async def current_committee(self) -> CommitteeInfo:
        return await self.committee(await self.current_epoch())

    # ------------------------------------------------------------ logs

    async def deposit_logs(self, blocks: BlockRange) -> tuple[DepositLog, ...]:
        """The ``Deposited`` logs of the Vault in ``blocks`` (keep the range within the
        provider's limit, :data:`~node.chain.logs.DEFAULT_MAX_SPAN`)."""
        raw = await self._logs(blocks, [DEPOSITED_TOPIC])
        return tuple(self._decode(log, decode_deposit) for log in raw)

    async def token_events(self, blocks: BlockRange) -> tuple[TokenEvent, ...]:
        raw = await self._logs(blocks, [TOKEN_REGISTERED_TOPIC, TOKEN_DEREGISTERED_TOPIC])
        return tuple(self._decode(log, lambda t, _d, p: decode_token_event(t, p)) for log in raw)

    async def registered_tokens(
        self, from_block: int, to_block: int | None = None, *, max_span: int = DEFAULT_MAX_SPAN
    ) -> frozenset[Address]:
        """The registered token set, replayed from the TokenRegistered/TokenDeregistered
        logs of ``from_block`` (the deploy block) to ``to_block`` (default: the head)."""
        return (await self.token_sets(from_block, to_block, max_span=max_span))[0]

    async def token_sets(
        self, from_block: int, to_block: int | None = None, *, max_span: int = DEFAULT_MAX_SPAN
    ) -> tuple[frozenset[Address], frozenset[Address]]:
        """The registered and the deregistered tokens (:func:`compute_token_sets`), from
        the logs of ``from_block`` to ``to_block`` (default: the head)."""
        last = await self.head() if to_block is None else to_block
        events: list[TokenEvent] = []
        for blocks in split_range(from_block, last, max_span):
            events.extend(await self.token_events(blocks))
        return compute_token_sets(events)

    # ------------------------------------------------------------ start-up check

    async def check_vault(self, expected_chain_id: int | None = None) -> VaultInfo:
        """Check that the RPC URL answers, serves the expected chain, and that the Vault
        address holds a Farthing Vault. Raises a :class:`~node.errors.NodeConfigError`
        (:class:`RpcUnreachableError`, :class:`WrongChainError`, :class:`VaultNotFoundError`)
        saying which setting is wrong and what to do."""
        try:
            chain_id = await self.chain_id()
            head = await self.head()
        except ChainReadError as exc:
            raise RpcUnreachableError(
                f"the chain's JSON-RPC URL {self._shown_url} does not answer ({exc}): "
                "check that the Ethereum node behind it runs (devnet: `devnet up`) and "
                "that the node's RPC URL setting points at it"
            ) from exc
        if expected_chain_id is not None and chain_id != expected_chain_id:
            raise WrongChainError(
                f"the JSON-RPC URL {self._shown_url} serves chain id {chain_id}, but the node "
                f"is configured for chain id {expected_chain_id}: point the RPC URL at the "
                "Vault's chain, or fix the configured chain id"
            )
        shown_vault = address_hex(self._vault)
        code = await self._config_read(
            self._read("eth_getCode", self._w3.eth.get_code(self._contract.address))
        )
        if not code:
            raise VaultNotFoundError(
                f"there is no contract at the Vault address {shown_vault} on chain id "
                f"{chain_id} ({self._shown_url}): check the Vault address (devnet: "
                "contracts.vault in the manifest) and that the RPC URL is the chain the "
                "Vault was deployed on"
            )
        try:
            domain = await self._config_read(self._view("eip712Domain", None))
            epoch = await self._config_read(self.current_epoch())
            next_id = await self._config_read(self.next_deposit_id())
            await self._config_read(self._view("domainSeparator", None))
        except VaultCallError as exc:
            raise VaultNotFoundError(
                f"the contract at {shown_vault} on chain id {chain_id} is not a Farthing "
                f"Vault ({exc}): check the Vault address (devnet: contracts.vault in the "
                "manifest; the token and price-feed contracts are not the Vault)"
            ) from exc
        _, name, version, domain_chain, verifying, *_ = domain
        expected = (VAULT_DOMAIN_NAME, VAULT_DOMAIN_VERSION, chain_id, self._contract.address)
        if (name, version, int(domain_chain), verifying) != expected:
            raise VaultNotFoundError(
                f"the contract at {shown_vault} on chain id {chain_id} is not a Farthing "
                f"Vault: its EIP-712 domain is {(name, version, int(domain_chain), verifying)}"
                f", not {expected}: check the Vault address"
            )
        return VaultInfo(Domain(chain_id, self._vault), epoch, next_id, head)

    # ------------------------------------------------------------ plumbing

    async def _read(self, what: str, request: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                return await request
        except (ContractLogicError, BadFunctionCallOutput) as exc:
            if isinstance(exc, ContractLogicError) and str(exc.data or "").startswith(
                "0x" + _UNKNOWN_EPOCH_SELECTOR
            ):
                raise UnknownEpochError(f"{what}: the Vault has no such epoch") from exc
            raise VaultCallError(f"{what} failed: {self._reason(exc)}") from exc
        except _READ_ERRORS as exc:
            raise ChainReadError(f"{what} via {self._shown_url}: {self._reason(exc)}") from exc

    async def _view(self, name: str, block: int | None, *args: Any) -> Any:
        call = self._contract.get_function_by_name(name)(*args).call(
            block_identifier="latest" if block is None else block
        )
        shown_args = ", ".join(str(a) for a in args)
        at = "" if block is None else f" at block {block}"
        return await self._read(f"Vault.{name}({shown_args}){at}", call)

    async def _config_read(self, request: Awaitable[T]) -> T:
        """A start-up read: a transport failure means the RPC URL is unusable."""
        try:
            return await request
        except VaultCallError:
            raise
        except ChainReadError as exc:
            raise RpcUnreachableError(
                f"the chain's JSON-RPC URL {self._shown_url} failed during the start-up "
                f"check ({exc}): check that the Ethereum node behind it runs and is synced"
            ) from exc

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

    def _decode(self, log: LogReceipt, decode: Callable[[list[bytes], bytes, LogPosition], T]) -> T:
        position = LogPosition(
            int(log["blockNumber"]), Hash32(bytes(log["blockHash"])), int(log["logIndex"])
        )
        try:
            return decode([bytes(t) for t in log["topics"]], bytes(log["data"]), position)
        except LogDecodeError as exc:
            raise ChainReadError(
                f"a Vault log in block {position.block_number} does not decode ({exc})"
            ) from exc

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, aiohttp.ClientResponseError):
            return f"HTTP {exc.status} {exc.message}"
        if isinstance(exc, TimeoutError):
            return f"no answer within {self._timeout:g} s"
        if isinstance(exc, ContractLogicError):
            return exc.message or "reverted"
        text = str(exc) or type(exc).__name__
        return text.replace(self._url, self._shown_url)
