"""The narrow object a handler gets: who wrote, in which session, and how to answer.

A :class:`Context` is made for one incoming message. ``reply`` answers the sender in the
same session with one of the models the handler's protocol lists in ``replies`` (anything
else raises :class:`~wallet.errors.ReplyNotAllowed`); in a sync exchange (the request
carried ``x-uagents-connection: sync``) the first reply becomes the HTTP response body
instead of a message of its own. ``send`` writes to any agent in the same session.
``pay`` passes through to the agent's :class:`~wallet.agent.FarthingWallet` if it has one.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from wallet.errors import ReplyNotAllowed
from wallet.uagents.envelope import Envelope
from wallet.uagents.models import Model
from wallet.uagents.payment import RequestPayment, payment_protocol_digest
from wallet.uagents.protocol import Route

if TYPE_CHECKING:
    from wallet.agent import FarthingWallet
    from wallet.client import Receipt
    from wallet.uagents.agent import Agent


class Context:
    """One incoming message's context (see the module docstring)."""

    def __init__(self, agent: Agent, envelope: Envelope, route: Route, *, sync: bool) -> None:
        self._agent = agent
        self._envelope = envelope
        self._route = route
        self._sync = sync
        self.sync_reply: Envelope | None = None

    @property
    def address(self) -> str:
        """This agent's address."""
        return self._agent.address

    @property
    def sender(self) -> str:
        """The (signature-checked) sender of the message being handled."""
        return self._envelope.sender

    @property
    def session(self) -> uuid.UUID:
        return self._envelope.session

    @property
    def logger(self) -> logging.Logger:
        return self._agent.logger

    @property
    def wallet(self) -> FarthingWallet | None:
        """The agent's wallet, if it was given one."""
        return self._agent.wallet

    async def reply(self, message: Model) -> None:
        """Answers the sender in this session with one of the handler's ``replies``."""
        if type(message) not in self._route.replies:
            allowed = sorted(model.__name__ for model in self._route.replies)
            raise ReplyNotAllowed(
                f"{self._route.model.__name__} may be answered with {allowed or 'nothing'},"
                f" not {type(message).__name__}"
            )
        envelope = self._agent.make_message(
            self.sender, message, session=self.session, protocol_digest=self._route.protocol_digest
        )
        if self._sync and self.sync_reply is None:
            self.sync_reply = envelope
            return
        await self._agent.deliver(envelope)

    async def send(self, to: str, message: Model, *, protocol_digest: str | None = None) -> None:
        """Sends ``message`` to ``to`` in this session."""
        envelope = self._agent.make_message(
            to, message, session=self.session, protocol_digest=protocol_digest
        )
        await self._agent.deliver(envelope)

    async def request_payment(self, request: RequestPayment, to: str | None = None) -> None:
        """Sends an AgentPaymentProtocol ``RequestPayment`` (to the sender by default)."""
        await self.send(
            to or self.sender, request, protocol_digest=payment_protocol_digest("buyer")
        )

    async def pay(self, *args: Any, **kwargs: Any) -> Receipt:
        """``FarthingWallet.pay`` of the agent's wallet (same arguments)."""
        if self.wallet is None:
            raise RuntimeError("this agent has no wallet: give Agent(wallet=...) to pay")
        return await self.wallet.pay(*args, **kwargs)
