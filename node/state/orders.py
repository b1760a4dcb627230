"""Phase 1: voting for an order, under the per-(account, sequence) lock."""

from __future__ import annotations

from node.state.changes import ActionSubmitOrder
from node.state.events import EventRefused, RefusalCode, SendVote
from node.state.records import AccountRecord, Lock, NodeContext
from node.state.transition import Scratch
from wallet.eip712 import order_digest, vote_digest
from wallet.errors import InvalidSignature
from wallet.signing import recover
from wallet.types import ZERO_ADDRESS, Hash32, SignedOrder, Vote, Withdrawal


def handle_submit_order(scratch: Scratch, context: NodeContext, change: ActionSubmitOrder) -> None:
    signed = change.signed
    order = signed.order
    owner = order.owner

    def refuse(code: RefusalCode, message: str, conflicting: Hash32 | None = None) -> None:
        scratch.events.append(EventRefused(code, message, conflicting))

    if not context.member:
        return refuse(
            RefusalCode.NOT_VOTING,
            f"this node is not a member of the committee of epoch {context.current_epoch}: "
            "ask the current committee for votes",
        )
    leaving = isinstance(order, Withdrawal) and order.token in context.withdraw_only
    if order.token not in context.tokens and not leaving:
        if order.token in context.withdraw_only:
            return refuse(RefusalCode.UNKNOWN_TOKEN, "the token is deregistered: withdraw it")
        return refuse(RefusalCode.UNKNOWN_TOKEN, "the token is not registered")
    if order.amount <= 0:
        return refuse(RefusalCode.ZERO_AMOUNT, "the amount must be positive")
    if isinstance(order, Withdrawal) and order.recipient == ZERO_ADDRESS:
        return refuse(RefusalCode.ZERO_RECIPIENT, "the recipient must not be the zero address")
    digest = order_digest(context.domain, order)
    try:
        signer = recover(digest, signed.signature)
    except InvalidSignature as exc:
        return refuse(RefusalCode.BAD_SIGNATURE, f"the owner's signature is invalid: {exc}")
    if signer != owner:
        return refuse(RefusalCode.BAD_SIGNATURE, "the signature is not the owner's")

    account = scratch.account(owner)
    if order.sequence < account.next_sequence:
        return refuse(
            RefusalCode.SEQUENCE_USED,
            f"sequence {order.sequence} is used; the account's next is {account.next_sequence}",
        )
    if order.sequence > account.next_sequence:
        return refuse(
            RefusalCode.SEQUENCE_AHEAD,
            f"sequence {order.sequence} is ahead; the account's next is {account.next_sequence}",
        )
    lock = account.lock
    if lock is not None and lock.sequence == order.sequence:
        if lock.order_digest != digest:
            return refuse(
                RefusalCode.CONFLICTING_ORDER,
                f"this node voted for another order at sequence {order.sequence}",
                lock.order_digest,
            )
        if lock.epoch >= context.current_epoch:
            # The same order again: the same vote, nothing written.
            vote = Vote(digest, lock.epoch, context.node, lock.vote_signature)
            scratch.events.append(SendVote(vote))
            return None
        # The same order, locked in an earlier epoch: vote for it again in the current
        # one (one order per sequence still), so a rotation cannot strand the account.
        return _vote(scratch, context, account, lock.signed, digest)
    if account.balance(order.token) < order.amount:
        return refuse(
            RefusalCode.INSUFFICIENT_BALANCE,
            f"balance {account.balance(order.token)} does not cover {order.amount}",
        )

    return _vote(scratch, context, account, signed, digest)


def _vote(
    scratch: Scratch,
    context: NodeContext,
    account: AccountRecord,
    signed: SignedOrder,
    digest: Hash32,
) -> None:
    """Lock ``signed`` on its (account, sequence) with a vote of the current epoch."""
    epoch = context.current_epoch
    signature = context.sign(vote_digest(context.domain, digest, epoch))
    new_lock = Lock(signed.order.sequence, digest, signed, epoch, signature)
    scratch.accounts[signed.order.owner] = account.with_lock(new_lock)
    scratch.events.append(SendVote(Vote(digest, epoch, context.node, signature)))
