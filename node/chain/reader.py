"""The node's chain reads: :class:`wallet.chain.VaultReader` with the node's errors.

The reading itself (JSON-RPC, the Vault's views and logs, the start-up check of the
Vault) lives once, in :mod:`wallet.chain`; this wrapper only translates its errors at the
boundary, so that the node's loops and start-up see :mod:`node.errors`:

* a read that fails or times out (:class:`~wallet.errors.ChainUnavailable`) or a log that
  does not decode (:class:`~wallet.chain.LogDecodeError`) is a
  :class:`~node.errors.ChainReadError` (transient: the caller retries);
* a Vault view that reverts (:class:`~wallet.errors.ContractReverted`) is a
  :class:`~node.errors.VaultCallError`, an :class:`~node.errors.UnknownEpochError` when
  the Vault has no such epoch;
* :meth:`ChainReader.check_vault`, the start-up check, turns them into
  :class:`~node.errors.NodeConfigError`\\ s that say which setting is wrong.

The RPC URL may carry an API key (``https://…/v3/<key>``): messages show only its scheme,
host and port (:func:`wallet.chain.redact_url`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from node.errors import (
    ChainReadError,
    RpcUnreachableError,
    UnknownEpochError,
    VaultCallError,
    VaultNotFoundError,
    WrongChainError,
)
from node.state.records import Committee
from wallet.chain import (
    DEFAULT_MAX_SPAN,
    DEFAULT_TIMEOUT,
    BlockRange,
    CommitteeInfo,
    DepositLog,
    LogDecodeError,
    TokenEvent,
    VaultInfo,
    VaultReader,
)
from wallet.errors import ChainConfigError, ChainUnavailable, ContractReverted
from wallet.types import Address, Epoch, Hash32


def committee_of(info: CommitteeInfo) -> Committee:
    """The state machine's :class:`~node.state.records.Committee` of ``info``."""
    return Committee(info.epoch, info.members, info.quorum)


@contextmanager
def _node_errors() -> Iterator[None]:
    """Translate :mod:`wallet.chain`'s read errors into the node's."""
    try:
        yield
    except ContractReverted as exc:
        kind = UnknownEpochError if exc.error == "UnknownEpoch" else VaultCallError
        raise kind(str(exc)) from exc
    except (ChainUnavailable, LogDecodeError) as exc:
        raise ChainReadError(str(exc)) from exc


class ChainReader:
    """Async reads of one Vault through one JSON-RPC URL. Use it as ``async with``, or
    call :meth:`close` (it owns an HTTP session)."""

    def __init__(self, rpc_url: str, vault: Address, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._reader = VaultReader(rpc_url, vault, timeout=timeout)

    @property
    def vault(self) -> Address:
        return self._reader.vault

    @property
    def shown_url(self) -> str:
        """The RPC URL as messages show it (:func:`~wallet.chain.redact_url`)."""
        return self._reader.shown_url

    async def close(self) -> None:
        await self._reader.close()

    async def __aenter__(self) -> ChainReader:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ reads

    async def chain_id(self) -> int:
        with _node_errors():
            return await self._reader.chain_id()

    async def head(self) -> int:
        """The latest block's number."""
        with _node_errors():
            return await self._reader.head()

    async def block_hash(self, number: int) -> Hash32 | None:
        """The hash of block ``number``; None when the chain does not reach it."""
        with _node_errors():
            return await self._reader.block_hash(number)

    async def current_epoch(self, block: int | None = None) -> Epoch:
        with _node_errors():
            return await self._reader.current_epoch(block)

    async def next_deposit_id(self, block: int | None = None) -> int:
        """The id the Vault gives the next deposit (1 + the deposits made by ``block``)."""
        with _node_errors():
            return await self._reader.next_deposit_id(block)

    async def committee(self, epoch: int, block: int | None = None) -> CommitteeInfo:
        """The committee of ``epoch`` at ``block`` (default: the latest), with its
        current endpoints (:class:`UnknownEpochError` if there is none)."""
        with _node_errors():
            return await self._reader.committee(epoch, block)

    async def deposit_logs(self, blocks: BlockRange) -> tuple[DepositLog, ...]:
        """The ``Deposited`` logs of the Vault in ``blocks`` (keep the range within the
        provider's limit, :data:`~wallet.chain.DEFAULT_MAX_SPAN`)."""
        with _node_errors():
            return await self._reader.deposit_logs(blocks)

    async def token_events(self, blocks: BlockRange) -> tuple[TokenEvent, ...]:
        with _node_errors():
            return await self._reader.token_events(blocks)

    async def token_sets(
        self, from_block: int, to_block: int | None = None, *, max_span: int = DEFAULT_MAX_SPAN
    ) -> tuple[frozenset[Address], frozenset[Address]]:
        """The registered and the deregistered tokens, from the Vault's logs of
        ``from_block`` (the deploy block) to ``to_block`` (default: the head)."""
        with _node_errors():
            return await self._reader.token_sets(from_block, to_block, max_span=max_span)

    # ------------------------------------------------------------ start-up check

    async def check_vault(self, expected_chain_id: int | None = None) -> VaultInfo:
        """Check that the RPC URL answers, serves the expected chain, and that the Vault
        address holds a Farthing Vault. Raises a :class:`~node.errors.NodeConfigError`
        (:class:`RpcUnreachableError`, :class:`WrongChainError`, :class:`VaultNotFoundError`)
        saying which setting is wrong and what to do."""
        shown_url = self.shown_url
        try:
            chain_id = await self._reader.chain_id()
            await self._reader.head()
        except ChainUnavailable as exc:
            raise RpcUnreachableError(
                f"the chain's JSON-RPC URL {shown_url} does not answer ({exc}): "
                "check that the Ethereum node behind it runs (devnet: `devnet up`) and "
                "that the node's RPC URL setting points at it"
            ) from exc
        if expected_chain_id is not None and chain_id != expected_chain_id:
            raise WrongChainError(
                f"the JSON-RPC URL {shown_url} serves chain id {chain_id}, but the node "
                f"is configured for chain id {expected_chain_id}: point the RPC URL at the "
                "Vault's chain, or fix the configured chain id"
            )
        try:
            return await self._reader.check_vault()
        except ChainConfigError as exc:
            raise VaultNotFoundError(str(exc)) from exc
        except ChainUnavailable as exc:
            raise RpcUnreachableError(
                f"the chain's JSON-RPC URL {shown_url} failed during the start-up "
                f"check ({exc}): check that the Ethereum node behind it runs and is synced"
            ) from exc
