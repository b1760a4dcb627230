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

The modules, each importing only those above it:

* :mod:`wallet.chain.logs` (pure): event topics, block ranges, log decoding, the
  registered token set.
* :mod:`wallet.chain.reverts` (pure): custom errors decoded by name.
* :mod:`wallet.chain.transactions` (pure): transaction and permit signing.
* :mod:`wallet.chain.reader`: :class:`VaultReader` and the values it reads.
* :mod:`wallet.chain.client`: :class:`VaultClient` and its results.

Example (devnet; see docs/agent-guide.md)::

    async with VaultClient(manifest.rpc_url, vault, key) as chain:
        done = await chain.deposit(usdf, 25 * 10**6)         # permit + deposit, one tx
        result = await chain.redeem(withdrawal_certificate)  # or ALREADY_REDEEMED
"""

from wallet.chain.client import (
    DEFAULT_PERMIT_LIFETIME,
    DEFAULT_RECEIPT_TIMEOUT,
    GAS_MARGIN,
    DepositResult,
    RedeemResult,
    RedeemStatus,
    SlashResult,
    TransactionInfo,
    VaultClient,
)
from wallet.chain.logs import (
    DEPOSITED_TOPIC,
    REDEEMED_TOPIC,
    REDEMPTION_SKIPPED_TOPIC,
    SLASHED_TOPIC,
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
    in_chain_order,
    split_range,
)
from wallet.chain.reader import (
    DEFAULT_MAX_SPAN,
    DEFAULT_TIMEOUT,
    ChainOverview,
    CommitteeInfo,
    FeedRound,
    TokenInfo,
    VaultInfo,
    VaultReader,
    redact_url,
)
from wallet.chain.reverts import RevertReason, decode_revert
from wallet.chain.transactions import PERMIT_TYPEHASH, permit_digest, sign_transaction

__all__ = [
    "DEFAULT_MAX_SPAN",
    "DEFAULT_PERMIT_LIFETIME",
    "DEFAULT_RECEIPT_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "DEPOSITED_TOPIC",
    "GAS_MARGIN",
    "PERMIT_TYPEHASH",
    "REDEEMED_TOPIC",
    "REDEMPTION_SKIPPED_TOPIC",
    "SLASHED_TOPIC",
    "TOKEN_DEREGISTERED_TOPIC",
    "TOKEN_REGISTERED_TOPIC",
    "BlockRange",
    "ChainOverview",
    "CommitteeInfo",
    "DepositLog",
    "DepositResult",
    "FeedRound",
    "LogDecodeError",
    "LogPosition",
    "RedeemResult",
    "RedeemStatus",
    "RevertReason",
    "SlashResult",
    "TokenEvent",
    "TokenInfo",
    "TransactionInfo",
    "VaultClient",
    "VaultInfo",
    "VaultReader",
    "compute_token_sets",
    "decode_deposit",
    "decode_revert",
    "decode_token_event",
    "in_chain_order",
    "permit_digest",
    "redact_url",
    "sign_transaction",
    "split_range",
]
