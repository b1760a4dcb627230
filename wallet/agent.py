"""The agent's wallet in one object: :class:`FarthingWallet` (open it with :func:`connect`).

It joins the client of the node network (:mod:`wallet.client`), the chain
(:mod:`wallet.chain`), exact amounts (:mod:`wallet.amounts`) and the spending policy
(:mod:`wallet.policy`, :mod:`wallet.spend_ledger`)::

    from wallet.agent import connect

    async with connect(rpc_url=url, vault=vault_hex, keystore="agent.json",
                       data_dir="~/.farthing", policy="policy.json") as w:
        receipt = await w.pay(payee_hex, "0.0025 USDF", reference=quote_hash)
        print(w.spent_by_reference(quote_hash))

Rule 1: the public surface is this module's ``__all__``; everything else is reached
through ``w.client`` (the :class:`~wallet.client.Wallet`) and ``w.chain`` (the
:class:`~wallet.chain.VaultClient`). Rule 2: amounts are exact: text like ``"0.0025
USDF"``, an ``int`` of base units with ``token=``, or a :class:`TokenAmount`; never a
float.

Connecting: from a devnet manifest (``manifest=``), or from ``rpc_url`` and ``vault``
alone: the chain id, the committee and its endpoints, and the registered tokens with
their decimals are read from the Vault. The Vault does not name its price feed: give
``price_feed`` to pay in the native token (FAR) under a policy (the manifest names it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec

from wallet.amounts import Token, TokenAmount, TokenRegistry
from wallet.chain import DepositResult, FeedRound, RedeemResult, VaultClient
from wallet.client import (
    CachedPrice,
    History,
    Network,
    PaymentRequest,
    Receipt,
    Recovery,
    Spending,
    Transport,
    Wallet,
)
from wallet.codec import address_hex, parse_address, parse_hash32
from wallet.errors import ChainConfigError, EncodingError, PaymentNotSeen, WalletError
from wallet.keystore import load_keystore, read_passphrase
from wallet.policy import PriceReading, SpendingPolicy
from wallet.signing import PrivateKey
from wallet.spend_ledger import ReferenceSpend, SpendLedger
from wallet.types import ZERO_HASH, Address, Certificate, Hash32

__all__ = ["AmountLike", "FarthingWallet", "PayRequest", "connect"]

#: An amount as agent code writes it: "0.0025 USDF", an int of base units (with a
#: token), or a TokenAmount.
AmountLike = str | int | TokenAmount
#: An address as text (0x, EIP-55 or lower case) or 20 bytes.
AddressLike = str | bytes
#: A reference (32 bytes, or 0x hex).
ReferenceLike = str | bytes

#: The symbols treated as USD stablecoins when the tokens are read from the chain.
USD_PEGGED = ("USDF",)


@dataclass(frozen=True, slots=True)
class PayRequest:
    """One payment of :meth:`FarthingWallet.pay_many`."""

    payee: AddressLike
    amount: AmountLike
    token: Token | str | None = None
    reference: ReferenceLike | None = None


class FarthingWallet:
    """One agent's wallet: pay and be paid on the ledger, deposit and withdraw on chain,
    under an optional spending policy. Build it with :func:`connect` (or
    :meth:`open`); close it (``async with``) to release the journal and HTTP sessions."""

    def __init__(
        self,
        client: Wallet,
        chain: VaultClient,
        tokens: TokenRegistry,
        *,
        price_feed: Address | None = None,
    ) -> None:
        self.client = client
        self.chain = chain
        self.tokens = tokens
        self._price_feed = price_feed

    # ------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls,
        *,
        data_dir: str | os.PathLike[str],
        key: PrivateKey | None = None,
        keystore: str | os.PathLike[str] | None = None,
        passphrase: str | Callable[[], str] | None = None,
        manifest: str | os.PathLike[str] | None = None,
        rpc_url: str | None = None,
        vault: AddressLike | None = None,
        price_feed: AddressLike | None = None,
        policy: SpendingPolicy | str | os.PathLike[str] | None = None,
        ledger: SpendLedger | str | os.PathLike[str] | None = None,
        usd_pegged: Iterable[str] = USD_PEGGED,
        price_ttl: float = 5.0,
        timeout: float = 5.0,
        receipt_timeout: float = 5.0,
        chain_receipt_timeout: float = 60.0,
        transport: Transport | None = None,
        clock: Callable[[], int] | None = None,
    ) -> FarthingWallet:
        """An open wallet (close it, or use :func:`connect`).

        - where: ``manifest`` (a devnet manifest path), or ``rpc_url`` and ``vault`` alone
          (committee, endpoints and tokens read from the chain; ``usd_pegged`` names the USD
          stablecoins among them); ``price_feed`` (the manifest's by default);
        - who: ``key``, or ``keystore`` with ``passphrase`` (text, a callable, or None:
          ``FARTHING_PASSPHRASE`` or the terminal, :func:`wallet.keystore.read_passphrase`);
        - ``data_dir``: the journal (and, by default, the spend ledger
          ``spend/<0xaccount>.json``): one process at a time;
        - ``policy``: a SpendingPolicy or its JSON file (None: no policy, no spend
          accounting); ``ledger``: a SpendLedger or its file; ``price_ttl``: seconds a price
          reading is reused;
        - ``timeout`` / ``receipt_timeout``: the node rounds; ``chain_receipt_timeout``: a
          transaction's receipt; ``transport``: the node transport (tests);
        - ``clock``: the policy's time in Unix seconds (None: the local clock). The price's
          age is ``clock() - updatedAt`` (chain time): an agent whose clock is not the
          chain's (a devnet whose time was moved with ``evm_increaseTime``) passes the
          chain's time here, e.g. the latest block's timestamp.
        """
        signer = _load_key(key, keystore, passphrase)
        if (manifest is None) == (rpc_url is None or vault is None):
            raise WalletError("connect: give manifest=, or rpc_url= and vault= (not both)")
        feed = None if price_feed is None else parse_address(price_feed, field="price_feed")
        if manifest is not None:
            data = json.loads(Path(manifest).read_text(encoding="utf-8"))
            network, tokens, native, url, feed_text = _from_manifest(data)
            feed = feed or parse_address(feed_text, field="price_feed")
            where = (url, network.domain.vault)
        else:
            assert rpc_url is not None
            assert vault is not None
            where = (rpc_url, parse_address(vault, field="vault"))
        chain = VaultClient(*where, signer, timeout=timeout, receipt_timeout=chain_receipt_timeout)
        try:
            if manifest is None:
                network, tokens, native = await _from_chain(chain, usd_pegged)
            spending = _spending(
                policy, ledger, tokens, native, chain, feed, Path(data_dir), signer.address,
                price_ttl, clock,
            )  # fmt: skip
            client = Wallet(
                signer, network, data_dir=Path(data_dir), transport=transport, spending=spending,
                timeout=timeout, receipt_timeout=receipt_timeout,
            )  # fmt: skip
            client.open()
        except BaseException:
            await chain.close()
            raise
        return cls(client, chain, tokens, price_feed=feed)

    async def close(self) -> None:
        """Releases the journal and closes the node and chain HTTP sessions."""
        try:
            await self.client.close()
        finally:
            await self.chain.close()

    async def __aenter__(self) -> FarthingWallet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def address(self) -> Address:
        """This agent's account (20 bytes; ``address_hex`` for its text)."""
        return self.client.address

    @property
    def network(self) -> Network:
        return self.client.network

    # ------------------------------------------------------------ amounts

    def amount(self, value: AmountLike, token: Token | str | None = None) -> TokenAmount:
        """``value`` as an exact, positive amount of a token this wallet knows
        (InvalidAmount, AmountTypeError for a float, UnknownToken)."""
        if isinstance(value, TokenAmount):
            if token is not None and self._token(token) != value.token:
                raise EncodingError("amount", f"a {value.token.symbol} amount, not {token}")
            return self.tokens.parse(value.units, token=value.token, positive=True)
        return self.tokens.parse(value, token=token, positive=True)

    def _token(self, token: Token | str) -> Token:
        return token if isinstance(token, Token) else self.tokens.by_symbol(token)

    # ------------------------------------------------------------ the ledger

    async def pay(
        self,
        payee: AddressLike,
        amount: AmountLike,
        token: Token | str | None = None,
        *,
        reference: ReferenceLike | None = None,
    ) -> Receipt:
        """Pays ``amount`` ("0.0025 USDF", base units with ``token``, or a TokenAmount)
        to ``payee`` for the task ``reference``; the verified receipt. The spending
        policy runs first: PolicyRefused (``rule``, ``over_by``) means nothing was sent."""
        request = self._request(PayRequest(payee, amount, token, reference))
        return await self.client.pay(
            request.payee, request.amount, request.token, reference=request.reference
        )

    async def pay_final(
        self,
        payee: AddressLike,
        amount: AmountLike,
        token: Token | str | None = None,
        *,
        reference: ReferenceLike | None = None,
    ) -> Certificate:
        """:meth:`pay` returning the certificate as soon as the payment is final
        (milliseconds), without waiting for a checkpoint; ``self.client.receipt(c)`` gets
        the receipt later."""
        request = self._request(PayRequest(payee, amount, token, reference))
        return await self.client.pay_final(
            request.payee, request.amount, request.token, reference=request.reference
        )

    async def pay_many(self, payments: Iterable[PayRequest]) -> list[Receipt]:
        """The payments in order, receipts fetched together (BatchIncomplete at the
        first failure, holding the receipts made)."""
        return await self.client.pay_many([self._request(p) for p in payments])

    def _request(self, payment: PayRequest) -> PaymentRequest:
        amount = self.amount(payment.amount, payment.token)
        return PaymentRequest(
            parse_address(payment.payee, field="payee"),
            amount.units,
            amount.token.address,
            _reference(payment.reference),
        )

    async def balance(self, token: Token | str) -> TokenAmount:
        """This account's balance of ``token`` on the ledger (a strong-majority lower
        bound: what a quorum of nodes would vote for now)."""
        known = self._token(token)
        return TokenAmount(known, await self.client.balance(known.address))

    async def history(self) -> History:
        """Every certificate this account signed, and every transfer it received,
        each verified."""
        return await self.client.history()

    async def certificate(
        self, digest: ReferenceLike, *, timeout: float | None = None
    ) -> Certificate | None:
        """The verified certificate of the order with EIP-712 digest ``digest`` (a
        payment's ``transaction_id`` in agent messages), from the nodes; None if none
        shows it within ``timeout`` seconds."""
        if isinstance(digest, bytes):
            if len(digest) != 32:
                raise EncodingError("digest", "expected 32 bytes")
            return await self.client.certificate(Hash32(digest), timeout=timeout)
        return await self.client.certificate(parse_hash32(digest, field="digest"), timeout=timeout)

    async def wait_for_payment(
        self,
        *,
        reference: ReferenceLike | None = None,
        payer: AddressLike | None = None,
        at_least: AmountLike | None = None,
        token: Token | str | None = None,
        timeout: float = 60.0,
    ) -> Certificate:
        """The verified certificate of the first transfer to this account matching every
        criterion given; PaymentNotSeen after ``timeout`` seconds."""
        minimum = None if at_least is None else self.amount(at_least, token)
        token_address = (
            minimum.token.address
            if minimum is not None
            else None
            if token is None
            else self._token(token).address
        )
        return await self.client.wait_for_payment(
            reference=None if reference is None else _reference(reference),
            payer=None if payer is None else parse_address(payer, field="payer"),
            token=token_address,
            min_amount=1 if minimum is None else minimum.units,
            timeout=timeout,
        )

    def spent_by_reference(self, reference: ReferenceLike) -> ReferenceSpend:
        """What the task ``reference`` cost: its certified payments, per token and in USD
        (needs a policy: WalletError without one)."""
        return self.client.spent_by_reference(_reference(reference))

    def references(self) -> Mapping[Hash32, ReferenceSpend]:
        """Every task's cost, by reference (needs a policy)."""
        if self.client.spending is None:
            raise WalletError("no spend ledger: connect with a policy to account spend")
        return self.client.spending.references()

    async def resume(self) -> Certificate | None:
        """After a crash: finishes the order in flight and settles the spend
        reservations it left (commit the certified, release the never-signed)."""
        return await self.client.resume()

    async def recover(self) -> Recovery:
        """After losing the data directory: finishes what the nodes hold, re-downloads
        the history and reads every balance."""
        return await self.client.recover()

    # ------------------------------------------------------------ the chain

    async def deposit(
        self,
        amount: AmountLike,
        token: Token | str | None = None,
        *,
        wait: bool = True,
        timeout: float = 60.0,
    ) -> DepositResult:
        """Deposits on chain in ONE transaction (EIP-2612 permit + depositWithPermit).
        With ``wait``, returns once :meth:`balance` shows it, i.e. a quorum of nodes
        credited it (each after its confirmations; a node still behind may show it a
        moment later), else PaymentNotSeen after ``timeout``."""
        exact = self.amount(amount, token)
        before = await self.client.balance(exact.token.address) if wait else 0
        done = await self.chain.deposit(exact.token.address, exact.units)
        if wait:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while await self.client.balance(exact.token.address) < before + exact.units:
                if loop.time() > deadline:
                    raise PaymentNotSeen(
                        f"deposit {done.deposit_id} is on chain, but the ledger has not "
                        f"credited it after {timeout:g} s"
                    )
                await asyncio.sleep(0.2)
        return done

    async def withdraw(
        self,
        amount: AmountLike,
        token: Token | str | None = None,
        recipient: AddressLike | None = None,
    ) -> Receipt:
        """Withdraws from the ledger to ``recipient`` (default: this account) on chain:
        the Withdrawal's verified receipt. Its ``certificate`` is then :meth:`redeem`\\ ed
        (by anyone) to move the tokens. Not subject to the spending policy."""
        exact = self.amount(amount, token)
        to = None if recipient is None else parse_address(recipient, field="recipient")
        return await self.client.withdraw(exact.units, exact.token.address, to)

    async def redeem(self, withdrawal: Certificate | Receipt) -> RedeemResult:
        """Submits a withdrawal certificate to the Vault; one already paid is reported
        (``status`` ALREADY_REDEEMED), not raised."""
        certificate = withdrawal.certificate if isinstance(withdrawal, Receipt) else withdrawal
        return await self.chain.redeem(certificate)

    async def price(self) -> FeedRound:
        """The latest price reading of the native token (needs ``price_feed``)."""
        if self._price_feed is None:
            raise ChainConfigError("no price feed: connect with price_feed= (the Vault names none)")
        return await self.chain.price(self._price_feed)


P = ParamSpec("P")


def _closing(
    opener: Callable[P, Awaitable[FarthingWallet]],
) -> Callable[P, contextlib.AbstractAsyncContextManager[FarthingWallet]]:
    @contextlib.asynccontextmanager
    async def opened(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[FarthingWallet]:
        async with await opener(*args, **kwargs) as wallet:
            yield wallet

    return opened


#: ``async with connect(...) as w:`` an open :class:`FarthingWallet`, closed after; the
#: arguments of :meth:`FarthingWallet.open`.
connect = _closing(FarthingWallet.open)


# ---------------------------------------------------------------- helpers


def _load_key(
    key: PrivateKey | None,
    keystore: str | os.PathLike[str] | None,
    passphrase: str | Callable[[], str] | None,
) -> PrivateKey:
    if (key is None) == (keystore is None):
        raise WalletError("connect: give key= or keystore= (exactly one)")
    if key is not None:
        return key
    assert keystore is not None
    if passphrase is None:
        secret = read_passphrase()
    elif callable(passphrase):
        secret = passphrase()
    else:
        secret = passphrase
    return load_keystore(keystore, secret)


def _from_manifest(data: Any) -> tuple[Network, TokenRegistry, Address, str, str]:
    network = Network.from_manifest_dict(data)
    try:
        contracts = data["contracts"]
        tokens = TokenRegistry.farthing(stable=contracts["stable"], native=contracts["native"])
        native = parse_address(contracts["native"], field="contracts.native")
        return network, tokens, native, str(data["rpc_url"]), str(contracts["price_feed"])
    except (KeyError, TypeError) as exc:
        raise EncodingError("manifest", f"missing or malformed field ({exc!r:.60})") from None


async def _from_chain(
    chain: VaultClient, usd_pegged: Iterable[str]
) -> tuple[Network, TokenRegistry, Address]:
    seen = await chain.overview()
    if seen.committee is None:
        raise ChainConfigError(
            f"the Vault {address_hex(chain.vault)} has no committee yet (epoch 0)"
        )
    pegged = {symbol.upper() for symbol in usd_pegged}
    infos = {t.address: t for t in (*seen.tokens, seen.native)}
    tokens = TokenRegistry(
        Token(t.address, t.symbol, t.decimals, usd_peg=t.symbol.upper() in pegged)
        for t in sorted(infos.values(), key=lambda t: t.symbol)
    )
    return Network.from_committee(seen.domain, seen.committee), tokens, seen.native.address


def _spending(
    policy: SpendingPolicy | str | os.PathLike[str] | None,
    ledger: SpendLedger | str | os.PathLike[str] | None,
    tokens: TokenRegistry,
    native: Address,
    chain: VaultClient,
    feed: Address | None,
    data_dir: Path,
    account: Address,
    price_ttl: float,
    clock: Callable[[], int] | None,
) -> Spending | None:
    if policy is None:
        if ledger is not None:
            raise WalletError("connect: a spend ledger needs a policy")
        return None
    rules = policy if isinstance(policy, SpendingPolicy) else SpendingPolicy.load(policy, tokens)
    if isinstance(ledger, SpendLedger):
        book = ledger
    else:
        if ledger is None:
            directory = data_dir / "spend"
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            ledger = directory / f"{address_hex(account)}.json"
        book = SpendLedger.open(ledger)

    async def read_price() -> PriceReading | None:
        if feed is None:
            return None
        return (await chain.price(feed)).price_reading()

    price = CachedPrice(read_price, ttl=price_ttl)
    if clock is None:
        return Spending(rules, book, tokens, price=price, priced=native)
    return Spending(rules, book, tokens, price=price, priced=native, clock=clock)


def _reference(reference: ReferenceLike | None) -> Hash32:
    if reference is None:
        return ZERO_HASH
    if isinstance(reference, bytes):
        if len(reference) != 32:
            raise EncodingError("reference", "expected 32 bytes")
        return Hash32(reference)
    return parse_hash32(reference, field="reference")
