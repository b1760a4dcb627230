"""The wallet package's errors: one root, mixed into the standard type it refines.

Every error the wallet raises on purpose is a :class:`WalletError`, so a caller can catch
the package as a whole; each one is also the built-in exception it refines (``ValueError``
for a bad value), so code that knows nothing of Farthing still handles it sensibly.

The hierarchy is split by **whose fault** it is and **whether retrying can help**::

    WalletError
    │
    │   Bad input: retrying the same call can never succeed.
    │   Raised at an edge (a peer's message, JSON, the CLI), it is a refusal with a
    │   reason (the node answers 4xx), not a crash.
    ├── EncodingError (ValueError)     a field cannot be encoded or decoded: an address that
    │                                  is not 20 bytes, a hash that is not 32, an integer
    │                                  outside its uint range, malformed hex, a bad EIP-55
    │                                  checksum; or a malformed wire message (wallet.wire: a
    │                                  missing or unknown key, a value of the wrong JSON type)
    ├── InvalidSignature (ValueError)  a signature that is malformed (not 65 bytes, v not in
    │                                  {27, 28}, r or s zero or >= n), malleable (high s),
    │                                  or that recovers to no public key (in a wire message,
    │                                  text that is not 0x + 130 hex digits is an
    │                                  EncodingError of its field; the rest is checked when
    │                                  the signature is verified)
    │   └── WrongSigner                a well-formed signature by another key than the one
    │                                  the message names: a forged or tampered agent record
    │                                  or mailbox request (wallet.directory)
    ├── InvalidKey (ValueError)        a private key that cannot be used: not 32 bytes, zero
    │                                  or >= n, or not the key of the account that must sign;
    │                                  a mnemonic with a word outside the BIP-39 English list
    │                                  or a wrong checksum; a malformed derivation path
    │
    │   Key files (wallet.keystore): nothing is retried automatically; each one says what
    │   the person at the keyboard must change.
    ├── KeystoreError                  a key file cannot be written or read
    │   ├── WrongPassphrase            the passphrase does not open the file (the MAC
    │   │   (ValueError)               does not match): the caller's fault; only another
    │   │                              passphrase helps
    │   ├── InvalidPassphrase          a passphrase that cannot protect a key (empty), or
    │   │   (ValueError)               two typed passphrases that differ
    │   ├── KeystoreCorrupt            not a v3 keystore this wallet reads: not JSON, a
    │   │   (ValueError)               missing or malformed field, an unknown cipher or
    │   │                              KDF, KDF parameters beyond the limits, a key out of
    │   │                              range or not the file's address (restore a backup)
    │   ├── UnsafePermissions          group or others may read or write the file
    │   │   (PermissionError)          (chmod 600 it)
    │   ├── KeystoreExists             the file exists and overwriting was not asked for
    │   │   (FileExistsError)
    │   ├── KeystoreNotFound           no file (or no directory) at that path
    │   │   (FileNotFoundError)
    │   └── NoPassphrase               the passphrase variable is unset or empty and there
    │                                  is no terminal to ask on
    │
    ├── InvalidReceipt (ValueError)    a receipt or certificate that does not verify
    │                                  (wallet.client.receipts): its sender's fault
    │
    │   The node network (wallet.client). ``retryable`` says whether the same call later
    │   can succeed.
    ├── NodeError                      ONE node's fault, raised by a Transport for one
    │   │                              request; the client counts it against that node and
    │   │                              goes on with the others (never escapes pay())
    │   ├── NodeUnavailable            down, refused, timed out (retryable)
    │   │   (ConnectionError)
    │   └── NodeMisbehaved             garbage: malformed JSON, a reply of the wrong shape
    │                                  or size, an unexpected status, a vote or certificate
    │                                  that does not verify (not retryable with that node)
    ├── QuorumUnavailable              fewer than a quorum of nodes answered usefully in
    │   (ConnectionError)              time; an order stays in the journal (retryable)
    ├── ReceiptUnavailable             the payment IS final (``certificate``) but no node
    │   (TimeoutError)                 served its receipt in time: ask for the receipt
    │                                  again (``receipt()``); paying again would pay twice,
    │                                  so it is not ``retryable``
    ├── PaymentRefused                 a quorum refused the order for a reason of the
    │   │                              caller's: retrying the same call cannot help
    │   ├── InsufficientBalance        the balance does not cover the amount
    │   └── ConflictingOrder           another order holds this account's sequence (only
    │                                  if the journal was lost or the key is used elsewhere)
    ├── BatchIncomplete                pay_many stopped at a failed payment (``cause``);
    │                                  ``receipts`` holds the ones that were made
    ├── PaymentNotSeen (TimeoutError)  wait_for_payment saw no matching payment in time
    │                                  (retryable)
    ├── JournalError (OSError)         the wallet's order journal cannot be read or written,
    │                                  or another process holds it
    │
    │   Amounts and spending policies (wallet.amounts, wallet.policy,
    │   wallet.spend_ledger): raised before anything is signed; nothing is sent.
    ├── InvalidAmount (EncodingError)  amount text or value that is not exact and valid:
    │                                  a sign, an exponent, whitespace, more decimals than
    │                                  the token has (never rounded), zero where a payment
    │                                  needs a positive amount, above 2**256 - 1
    ├── AmountTypeError (TypeError)    a float (inexact) or another non-amount type
    ├── UnknownToken (ValueError)      a symbol or address the token registry does not hold
    ├── PolicyRefused                  the spending policy refuses the payment: ``rule``
    │                                  says which, ``limit``/``attempted``/``over_by`` by how
    │                                  much (not retryable: it passes only once the rolling
    │                                  window moves on or the policy is edited)
    ├── PriceUnavailable               no usable USD price of the native token: none given,
    │   │                              or not positive (retryable with a fresh reading)
    │   └── StalePrice                 the reading is older than the policy's max age
    ├── UnknownReservation             commit/release of a reservation that is not pending
    │   (LookupError)                  (already committed or released): a caller's bug
    ├── LedgerError (OSError)          the spend ledger file cannot be read, parsed or
    │                                  written (not retryable as is)
    │
    │   Agent messages (wallet.uagents): the sender's fault (a malformed envelope is an
    │   EncodingError, a bad envelope signature an InvalidSignature).
    ├── EnvelopeRefused (ValueError)   a well-formed envelope refused by the replay guard;
    │   │                              ``reason`` is "stale", "replayed", "no_expiry",
    │   │                              "too_far_ahead" or "guard_full"
    │   ├── StaleEnvelope              its ``expires`` is not after now
    │   ├── ReplayedEnvelope           its digest was accepted before
    │   └── ReplayGuardFull            too many unexpired envelopes remembered (retryable)
    ├── MessageRefused (ValueError)    a handler refuses the message; the sender is told
    │   │                              "{reason}: {text}" in an ErrorMessage
    │   └── SessionRefused             a negotiation/payment session refuses a message
    │       │                          (wallet.uagents.sessions); ``reason`` is the code
    │       ├── OutOfTurn              not allowed from that sender in that phase
    │       ├── QuoteExpired           a quote sent or accepted at or after ``expires``
    │       ├── QuoteMismatch          names another quote (id, hash, service, token)
    │       ├── PaymentMismatch        amount, token, recipient, reference or id differ
    │       ├── PaymentNotVerified     completing a payment whose certificate is unverified
    │       └── NotPaid                a metered request without a completed payment
    ├── DeliveryFailed                 an agent message was not delivered: no endpoint for
    │   (ConnectionError)              the target, none answered HTTP 200, or a sync reply
    │                                  that is not a valid signed envelope (retryable)
    ├── ErrorReply                     the peer agent answered with an ErrorMessage (its
    │                                  ``error`` text): it refused the message
    ├── NoReply (TimeoutError)         the peer took the message but sent no expected
    │                                  reply in time (an async-mode ask)
    ├── ReplyNotAllowed (TypeError)    a handler replied with a model its protocol does not
    │                                  list in ``replies``: a programming error
    │
    │   The nodes' agent directory and mailbox (wallet.uagents.directory_client); one
    │   node's fault in one request is a NodeUnavailable or NodeMisbehaved, as above.
    ├── DirectoryRefused (ValueError)  a node refused a record or a mailbox fetch with a 4xx
    │                                  or 507 and its ``code`` ("old_sequence",
    │                                  "wrong_node", ...): the request's fault
    ├── RegistrationFailed             no node stored the record; ``outcomes`` holds each
    │                                  node's error (retryable if one node was down)
    ├── DirectoryUnavailable           no node gave a useful answer (down, garbage, or only
    │   (ConnectionError)              records that do not verify); ``faults`` per node
    │
    │   The chain (wallet.chain): reading the Vault, sending the agent's transactions.
    └── ChainError
        ├── ChainUnavailable            the RPC URL does not answer, not in time, or with an
        │   (ConnectionError)           error (retryable: nothing was sent)
        ├── ChainConfigError            the RPC URL, Vault or token address do not designate
        │   (ValueError)                what they should: no contract there, not a Farthing
        │                               Vault, another chain, a token without EIP-2612
        ├── ContractReverted            a view call the contract refused; ``error`` and
        │   │                           ``arguments`` are its decoded custom error
        │   └── TransactionReverted     a transaction the contract refused, when its gas
        │                               was estimated (nothing sent, ``tx_hash`` None) or
        │                               mined with status 0 (not retryable as is)
        ├── TransactionRejected         the RPC node refused the signed transaction: no ETH
        │                               for gas, a nonce or fee it does not take
        └── TransactionUnconfirmed      signed and maybe sent, but no receipt within the
            (TimeoutError)              timeout (or the RPC failed while sending): wait for
                                        ``tx_hash`` again; sending anew could pay twice

Messages name the field and say what was expected. They never contain key material:
no error, ``repr`` or ``str`` in this package may reveal a private key.
"""

from __future__ import annotations

from typing import ClassVar


class WalletError(Exception):
    """The root of every error the wallet package raises on purpose.

    ``retryable`` says whether the same call, made again later, can succeed (a timeout,
    a node that is down) or never can (bad input, a refusal of the caller's order).
    """

    retryable: ClassVar[bool] = False


class EncodingError(WalletError, ValueError):
    """A value cannot be encoded as the protocol field it is meant to be.

    ``field`` names the field (``"amount"``, ``"payer"``, ``"address"``…; in a wire message,
    its dotted path: ``"order.amount"``, ``"votes[2].signature"``), so that an API can
    refuse a request with a precise reason.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class InvalidSignature(WalletError, ValueError):  # noqa: N818 (the protocol's name for it)
    """A signature is malformed, malleable (high s), or recovers to no public key.

    Whoever produced the signature is at fault; the same bytes never become valid.
    """


class WrongSigner(InvalidSignature):
    """A valid signature, but not by the key the message names (a forged or tampered
    agent record or mailbox fetch request, wallet.directory)."""


class InvalidKey(WalletError, ValueError):  # noqa: N818 (named like InvalidSignature)
    """A private key cannot be used: malformed, out of range, or the wrong account's.

    The message never contains the key or the text it was parsed from.
    """


# ---------------------------------------------------------------- the node client


class InvalidReceipt(WalletError, ValueError):  # noqa: N818 (named like InvalidSignature)
    """A receipt (or a certificate) does not verify: a signature, the quorum, the
    membership, the Merkle proof or the checkpoint is wrong. ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NodeError(WalletError):
    """One node's fault in one request (a :class:`wallet.client.Transport` raises it).

    ``endpoint`` is the node's URL. The client counts it against that node and goes on
    with the others; it never escapes ``pay()`` (a lack of quorum does, as
    :class:`QuorumUnavailable`, listing these).
    """

    def __init__(self, endpoint: str, problem: str) -> None:
        super().__init__(f"{endpoint}: {problem}")
        self.endpoint = endpoint
        self.problem = problem


class NodeUnavailable(NodeError, ConnectionError):  # noqa: N818 (named like InvalidSignature)
    """The node is down, refused the connection or did not answer in time."""

    retryable = True


class NodeMisbehaved(NodeError):  # noqa: N818 (named like InvalidSignature)
    """The node answered with garbage: malformed JSON, a reply of the wrong shape or size,
    an unexpected status, or a signed message that does not verify."""


class QuorumUnavailable(WalletError, ConnectionError):  # noqa: N818 (named like InvalidSignature)
    """Fewer than a quorum of nodes gave a useful answer in time. ``faults`` maps each
    failing node's URL to what went wrong. An order in flight stays in the journal and is
    finished by the next call (or ``Wallet.resume()``)."""

    retryable = True

    def __init__(self, what: str, faults: dict[str, str]) -> None:
        detail = "; ".join(f"{url}: {problem}" for url, problem in sorted(faults.items()))
        super().__init__(
            f"{what}: no quorum of nodes answered" + (f" ({detail})" if detail else "")
        )
        self.faults = faults


class ReceiptUnavailable(WalletError, TimeoutError):  # noqa: N818 (named like InvalidSignature)
    """The payment is final, but no node served a receipt for it in time. ``certificate``
    is the payment's; get the receipt later with ``Wallet.receipt(certificate)``. Not
    ``retryable``: the call that raised it must NOT be made again (that would pay again)."""

    retryable = False

    def __init__(self, certificate: object, digest: str, faults: dict[str, str]) -> None:
        detail = "; ".join(f"{url}: {problem}" for url, problem in sorted(faults.items()))
        super().__init__(
            f"the payment {digest} is final, but no node served a receipt in time (do not "
            "pay again; ask for the receipt later with Wallet.receipt)"
            + (f" ({detail})" if detail else "")
        )
        self.certificate = certificate
        self.faults = faults


class PaymentRefused(WalletError):  # noqa: N818 (named like InvalidSignature)
    """A quorum of nodes refused the order for a reason of the caller's (``code`` is the
    ledger's refusal code, docs/protocol.md 1a). The same order can never be voted for."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InsufficientBalance(PaymentRefused, ValueError):  # noqa: N818 (named like InvalidSignature)
    """The account's balance of the token does not cover the amount on a quorum."""


class ConflictingOrder(PaymentRefused):
    """Another order of this account holds (or used) ``sequence``: the nodes' lock is on
    the order with digest ``conflicting``. Possible only if the wallet's journal was lost
    or the key signs elsewhere too; the wallet never signs two orders for one sequence."""

    def __init__(self, sequence: int, conflicting: bytes | None, message: str) -> None:
        super().__init__("conflicting_order", message)
        self.sequence = sequence
        self.conflicting = conflicting


class BatchIncomplete(WalletError):  # noqa: N818 (named like InvalidSignature)
    """``pay_many`` stopped at a payment that failed (``cause``, also ``__cause__``);
    ``receipts`` are the payments before it, which were made."""

    def __init__(self, receipts: list[object], cause: WalletError) -> None:
        super().__init__(f"{len(receipts)} payment(s) made, then: {cause}")
        self.receipts = receipts
        self.cause = cause

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.cause.retryable


class PaymentNotSeen(WalletError, TimeoutError):  # noqa: N818 (named like InvalidSignature)
    """``wait_for_payment`` saw no matching, valid payment before its timeout."""

    retryable = True


class JournalError(WalletError, OSError):
    """The wallet's order journal cannot be read or written, or another process has it
    open. Not retryable as is: the data directory needs attention."""


# ---------------------------------------------------------------- amounts and policies


class InvalidAmount(EncodingError):  # noqa: N818 (named like InvalidSignature)
    """Amount text or a value that is not a valid exact amount of its token (``field`` and
    ``problem`` as for :class:`EncodingError`). Never echoes the text it was given."""


class AmountTypeError(WalletError, TypeError):
    """A value of the wrong type where an exact amount is needed: a ``float`` (inexact:
    ``0.1`` is not one tenth) or anything but decimal text and an ``int`` of base units."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class UnknownToken(WalletError, ValueError):  # noqa: N818 (named like InvalidSignature)
    """A symbol or address that names no token of the registry."""


class PolicyRefused(WalletError):  # noqa: N818 (named like InvalidSignature)
    """The spending policy refuses a payment; nothing was signed or sent.

    ``rule`` names the rule (``"max_per_payment"``, ``"max_per_payment_usd"``,
    ``"budget"``, ``"payee_cap"``, ``"allow_list"``, ``"deny_list"``). For a limit,
    ``limit`` and ``attempted`` are integers in ``unit`` with ``decimals`` decimals (a
    token's base units, or USD in units of 10**-18), and ``over_by`` is their difference.
    """

    def __init__(
        self,
        rule: str,
        message: str,
        *,
        limit: int | None = None,
        attempted: int | None = None,
        unit: str = "",
        decimals: int = 0,
    ) -> None:
        super().__init__(f"refused by {rule}: {message}")
        self.rule = rule
        self.limit = limit
        self.attempted = attempted
        self.unit = unit
        self.decimals = decimals

    @property
    def over_by(self) -> int | None:
        """How far ``attempted`` is over ``limit`` (None for a rule without a figure)."""
        if self.limit is None or self.attempted is None:
            return None
        return self.attempted - self.limit


class PriceUnavailable(WalletError):  # noqa: N818 (named like InvalidSignature)
    """No usable USD price of the native token to value a payment in it: none was given,
    or the answer is not positive. Retryable with a fresh reading of the feed."""

    retryable = True


class StalePrice(PriceUnavailable):
    """The price reading is ``age`` seconds old, more than the policy's ``max_age``."""

    def __init__(self, age: int, max_age: int) -> None:
        super().__init__(
            f"the price of the native token is {age} s old, more than the {max_age} s allowed"
        )
        self.age = age
        self.max_age = max_age


class UnknownReservation(WalletError, LookupError):  # noqa: N818 (named like InvalidSignature)
    """A reservation that is not pending (already committed or released, or another
    ledger's) was committed or released."""


class LedgerError(WalletError, OSError):
    """The spend ledger's file cannot be read, parsed or written. Not retryable as is:
    the data directory needs attention (a restarted agent must not forget its budget)."""


# ---------------------------------------------------------------- key files


class KeystoreError(WalletError):
    """A key file (Web3 Secret Storage v3) cannot be written or read.

    Messages name the file and what to do; they never contain the passphrase or the key.
    """


class WrongPassphrase(KeystoreError, ValueError):  # noqa: N818 (what the user is told)
    """The passphrase does not open the key file: its MAC does not match.

    The caller's fault: retrying with the same passphrase can never succeed. (A MAC also
    fails if the ciphertext or the MAC itself was altered; the two cannot be told apart.)
    """


class InvalidPassphrase(KeystoreError, ValueError):  # noqa: N818
    """A passphrase that cannot protect a key: empty, or not text."""


class KeystoreCorrupt(KeystoreError, ValueError):  # noqa: N818
    """The file is not a v3 keystore this wallet can read, whatever the passphrase.

    Not JSON, a missing or malformed field, an unknown version, cipher or KDF, KDF
    parameters beyond this wallet's limits, or a decrypted key that is out of range or is
    not the key of the address the file names. Restore the file from a backup.
    """


class UnsafePermissions(KeystoreError, PermissionError):  # noqa: N818
    """The key file may be read or written by its group or by others: ``chmod 600`` it.

    ``path`` is the file, ``mode`` its permission bits.
    """

    def __init__(self, path: str, mode: int) -> None:
        super().__init__(
            f"{path}: mode {mode:04o} lets group or others read or write this key file; "
            f"run: chmod 600 {path}"
        )
        self.path = path
        self.mode = mode


class KeystoreExists(KeystoreError, FileExistsError):  # noqa: N818
    """The key file already exists and overwriting it was not asked for."""


class KeystoreNotFound(KeystoreError, FileNotFoundError):  # noqa: N818
    """There is no key file at that path."""


class NoPassphrase(KeystoreError):  # noqa: N818
    """No passphrase could be obtained: the environment variable is not set (or empty) and
    standard input is not a terminal to ask on."""


# ---------------------------------------------------------------- agent messages


class EnvelopeRefused(WalletError, ValueError):  # noqa: N818 (named like PaymentRefused)
    """A well-formed uAgents envelope that the replay guard (:mod:`wallet.uagents.replay`)
    refuses. ``reason`` is a short code ("stale", "replayed", "no_expiry",
    "too_far_ahead", "guard_full"), ``digest`` the envelope's signed digest in hex."""

    def __init__(self, reason: str, digest: str, message: str) -> None:
        super().__init__(f"envelope {digest}: {message}")
        self.reason = reason
        self.digest = digest


class StaleEnvelope(EnvelopeRefused):
    """The envelope's ``expires`` is not after the time it was checked at."""


class ReplayedEnvelope(EnvelopeRefused):
    """An envelope with this digest was accepted before (a replay, or the same message
    signed again: the digest does not cover the signature)."""


class ReplayGuardFull(EnvelopeRefused):
    """The guard remembers as many unexpired envelopes as it may; retry once some expire."""

    retryable = True


class DeliveryFailed(WalletError, ConnectionError):  # noqa: N818 (named like PaymentRefused)
    """An agent message was not delivered to ``target``: no endpoint is known for it,
    none answered HTTP 200 (the only status uAgents counts as delivered), or a sync reply
    was not a valid envelope signed by the target."""

    retryable = True

    def __init__(self, target: str, problem: str) -> None:
        super().__init__(f"{target}: {problem}")
        self.target = target
        self.problem = problem


class ErrorReply(WalletError):  # noqa: N818 (the peer's ErrorMessage)
    """The peer agent answered with an ``ErrorMessage``: it refused the message
    (``error`` is its text, the peer's words)."""

    def __init__(self, sender: str, error: str) -> None:
        super().__init__(f"{sender} refused the message: {error}")
        self.sender = sender
        self.error = error


class NoReply(WalletError, TimeoutError):  # noqa: N818 (what happened)
    """The peer agent took the message (HTTP 200) but no expected reply came back to this
    agent's endpoint in time (:meth:`~wallet.uagents.agent.Agent.ask` in async mode).
    Asking again sends a new message: only do so if the request may be handled twice."""

    def __init__(self, sender: str, timeout: float) -> None:
        super().__init__(f"{sender} sent no expected reply within {timeout:g} s")
        self.sender = sender
        self.timeout = timeout


class ReplyNotAllowed(WalletError, TypeError):  # noqa: N818 (what the handler did)
    """A handler replied with a model that its protocol does not list in ``replies``."""


class DirectoryRefused(WalletError, ValueError):  # noqa: N818 (named like PaymentRefused)
    """The node at ``node`` refused a directory record or a mailbox fetch: HTTP ``status``
    with the node's ``code`` (docs/protocol.md 7.2, 7.3) and ``message``. The request's
    fault: sent again unchanged, it is refused again (507, a full directory or mailbox,
    may pass later)."""

    def __init__(self, node: str, status: int, code: str, message: str) -> None:
        super().__init__(f"{node} refused ({status} {code}): {message}")
        self.node = node
        self.status = status
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status == 507


class RegistrationFailed(WalletError):  # noqa: N818 (what happened)
    """No node stored (or already had) the agent record. ``outcomes`` maps each node's
    URL to its error: :class:`DirectoryRefused`, :class:`NodeUnavailable` or
    :class:`NodeMisbehaved`. Retryable if one of them is."""

    def __init__(self, outcomes: dict[str, WalletError]) -> None:
        detail = "; ".join(str(error) for _, error in sorted(outcomes.items()))
        super().__init__(f"no node stored the record ({detail})")
        self.outcomes = outcomes

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return any(error.retryable for error in self.outcomes.values())


class DirectoryUnavailable(WalletError, ConnectionError):  # noqa: N818 (like NodeUnavailable)
    """No node gave a useful answer to a directory or mailbox call: each one was down,
    answered garbage or served only records that do not verify. ``faults`` maps each
    node's URL to its error."""

    retryable = True

    def __init__(self, what: str, faults: dict[str, WalletError]) -> None:
        detail = "; ".join(str(error) for _, error in sorted(faults.items()))
        super().__init__(f"{what}: no node answered usefully ({detail})")
        self.faults = faults


class MessageRefused(WalletError, ValueError):  # noqa: N818 (named like PaymentRefused)
    """A message handler refuses the message it was given: the sender's fault. The agent
    (:class:`~wallet.uagents.agent.Agent`) answers with an ``ErrorMessage`` whose text is
    ``"{reason}: {message}"``, so raise it with words meant for the sender; any other
    exception from a handler is answered with a generic text and logged."""

    reason: ClassVar[str] = "refused"


class SessionRefused(MessageRefused):
    """A negotiation or payment session (:mod:`wallet.uagents.sessions`) refuses a
    message: the sender's fault; the session's state is unchanged. ``message`` is the
    refused message's model name, ``phase`` the session's phase, ``reason`` a short code
    ("out_of_turn", "quote_expired", "quote_mismatch", "payment_mismatch",
    "not_verified", "not_paid")."""

    def __init__(self, message: str, phase: str, problem: str) -> None:
        super().__init__(f"{message} refused in phase {phase}: {problem}")
        self.message = message
        self.phase = phase
        self.problem = problem


class OutOfTurn(SessionRefused):
    """A message that its sender may not send in this phase; ``expected`` lists the
    (sender, message) pairs allowed there, as "role:Model" strings."""

    reason = "out_of_turn"

    def __init__(self, message: str, phase: str, sender: str, expected: tuple[str, ...]) -> None:
        allowed = ", ".join(expected) if expected else "nothing (the session is over)"
        super().__init__(message, phase, f"not expected from the {sender}; expected {allowed}")
        self.sender = sender
        self.expected = expected


class QuoteExpired(SessionRefused):
    """A quote sent or accepted at or after its ``expires``."""

    reason = "quote_expired"


class QuoteMismatch(SessionRefused):
    """A quote, counter offer, accept or reject that names another quote (its id, hash,
    service or token)."""

    reason = "quote_mismatch"


class PaymentMismatch(SessionRefused):
    """A payment request, commitment or verified payment whose amount, token, method,
    recipient, reference or transaction id does not match the accepted quote (or that
    exceeds a metered quote's units, or reuses a transaction id)."""

    reason = "payment_mismatch"


class PaymentNotVerified(SessionRefused):
    """The seller would complete a payment whose certificate it has not verified."""

    reason = "not_verified"


class NotPaid(SessionRefused):
    """A metered request that names no completed, unused payment of the session."""

    reason = "not_paid"


# ---------------------------------------------------------------- the chain


class ChainError(WalletError):
    """Reading the chain or settling on it failed (:mod:`wallet.chain`). Messages show the
    RPC URL only as ``scheme://host:port`` (its path often holds an API key)."""


class ChainUnavailable(ChainError, ConnectionError):  # noqa: N818 (like NodeUnavailable)
    """The JSON-RPC URL does not answer, does not answer in time, or answers a read with an
    error. Nothing was sent; the same call may succeed later."""

    retryable = True


class ChainConfigError(ChainError, ValueError):
    """An address or URL does not designate what it should: no contract at the Vault
    address, a contract that is not a Farthing Vault, another chain than expected, a
    token without EIP-2612 ``permit``. The message says which setting to fix."""


class ContractReverted(ChainError):  # noqa: N818 (what happened, as Solidity says)
    """A contract refused a call. ``error`` is the decoded custom error's name
    (``"UnknownEpoch"``, ``"AlreadyRedeemed"``, ``"Error"`` for a revert string,
    ``"Panic"``), or None when the revert data does not decode; ``arguments`` are its
    named arguments (addresses as checksummed text); ``data`` the raw revert data."""

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        arguments: dict[str, object] | None = None,
        data: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.error = error
        self.arguments = dict(arguments or {})
        self.data = data


class TransactionReverted(ContractReverted):
    """A transaction the contract refuses: found when its gas was estimated (nothing was
    sent: ``tx_hash`` is None) or mined with status 0 (``tx_hash`` is set, its gas is
    spent). Not retryable as is: the reason (``error``) must change first."""

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        arguments: dict[str, object] | None = None,
        data: bytes = b"",
        tx_hash: bytes | None = None,
    ) -> None:
        super().__init__(message, error=error, arguments=arguments, data=data)
        self.tx_hash = tx_hash


class TransactionRejected(ChainError):  # noqa: N818 (what the RPC node did)
    """The RPC node refused the signed transaction before it reached a block: no ETH for
    the gas, a nonce or a fee it does not take. Not retryable as is."""


class TransactionUnconfirmed(ChainError, TimeoutError):  # noqa: N818 (its state)
    """A signed transaction (``tx_hash``, ``nonce``) has no receipt within the timeout, or
    the RPC failed while it was being sent: it may still be mined. Not retryable as is:
    wait for ``tx_hash`` again (``VaultClient.wait_for_receipt``); sending the same
    deposit anew could pay twice."""

    def __init__(self, message: str, *, tx_hash: bytes, nonce: int | None = None) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash
        self.nonce = nonce
