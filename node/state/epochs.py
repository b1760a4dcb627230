"""What the node learns from the Vault after start: a new epoch's committee, a token
(de)registered. They change the node's context (through the writer, so that they are
ordered with every other change) and, for a committee, write its record."""

from __future__ import annotations

from dataclasses import replace

from node.state.changes import ContractReceiveNewEpoch, ContractReceiveTokenRegistration
from node.state.events import (
    EventCommitteeStored,
    EventEpochChanged,
    EventRefused,
    EventTokensChanged,
    RefusalCode,
)
from node.state.records import NodeContext
from node.state.transition import Scratch


def handle_new_epoch(
    scratch: Scratch, context: NodeContext, change: ContractReceiveNewEpoch
) -> None:
    """Store the committee of a started epoch (once; the Vault never changes it), and
    move the current epoch forward to it (never back)."""
    committee = change.committee
    known = scratch.committee(committee.epoch)
    if known is not None and known != committee:
        scratch.events.append(
            EventRefused(
                RefusalCode.COMMITTEE_CONFLICT,
                f"the Vault reports another committee for epoch {committee.epoch} than the "
                "one this node stored: the chain reorganised deeper than the confirmations, "
                "or the RPC serves another chain",
            )
        )
        return
    if known is None:
        scratch.committees[committee.epoch] = committee
        scratch.events.append(EventCommitteeStored(committee.epoch))
    if committee.epoch > context.current_epoch:
        member = context.node in committee.members
        scratch.context = replace(context, current_epoch=committee.epoch, member=member)
        scratch.events.append(EventEpochChanged(committee.epoch, member))


def handle_token_registration(
    scratch: Scratch, context: NodeContext, change: ContractReceiveTokenRegistration
) -> None:
    """A registered token is voted on for every order; a deregistered one only for
    withdrawals (its balances can leave the ledger, never move inside it). Idempotent."""
    token = change.token
    tokens, withdraw_only = set(context.tokens), set(context.withdraw_only)
    if change.registered:
        tokens.add(token)
        withdraw_only.discard(token)
    else:
        tokens.discard(token)
        withdraw_only.add(token)
    if tokens == context.tokens and withdraw_only == context.withdraw_only:
        return
    scratch.context = replace(
        context, tokens=frozenset(tokens), withdraw_only=frozenset(withdraw_only)
    )
    scratch.events.append(EventTokensChanged(token, change.registered))
