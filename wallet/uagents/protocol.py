"""Protocols: typed message models and the handlers an agent runs for them.

A :class:`Protocol` groups the messages an agent receives, each with the reply models its
handler may send back::

    proto = Protocol("quotes", "0.1.0")

    @proto.on_message(QuoteRequest, replies={Quote})
    async def quote(ctx: Context, sender: str, msg: QuoteRequest) -> None:
        await ctx.reply(Quote(price="2500"))

Its digest is uagents' (:func:`wallet.uagents.models.protocol_digest`): a hash of the
models and interactions, not of the name or the version. Replying with a model outside
``replies`` raises :class:`~wallet.errors.ReplyNotAllowed` in the handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from wallet.uagents.models import Model, model_digest, protocol_digest, protocol_manifest

if TYPE_CHECKING:
    from wallet.uagents.context import Context

M = TypeVar("M", bound=Model)
#: ``async def handler(ctx, sender, message) -> None``.
Handler = Callable[["Context", str, M], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route:
    """One message model's handler, the replies it may send and its protocol's digest."""

    model: type[Model]
    replies: frozenset[type[Model]]
    handler: Handler[Any]
    protocol_digest: str


class Protocol:
    """A named, versioned set of message handlers (see the module docstring)."""

    def __init__(self, name: str, version: str = "0.1.0") -> None:
        self.name = name
        self.version = version
        self._interactions: dict[type[Model], frozenset[type[Model]]] = {}
        self._handlers: dict[type[Model], Handler[Any]] = {}

    def on_message(
        self, model: type[M], *, replies: Iterable[type[Model]] = ()
    ) -> Callable[[Handler[M]], Handler[M]]:
        """Registers the decorated coroutine as the handler of ``model``."""
        if model in self._handlers:
            raise ValueError(f"{self.name} already handles {model.__name__}")
        allowed = frozenset(replies)

        def register(handler: Handler[M]) -> Handler[M]:
            self._interactions[model] = allowed
            self._handlers[model] = handler
            return handler

        return register

    @property
    def interactions(self) -> dict[type[Model], frozenset[type[Model]]]:
        """Each handled model and the reply models its handler may send."""
        return dict(self._interactions)

    @property
    def digest(self) -> str:
        """The protocol digest uagents computes (docs/protocol.md 6.4)."""
        return protocol_digest(self._interactions)

    @property
    def manifest(self) -> dict[str, Any]:
        """The hashed part of the manifest, with the name and version as uagents adds them."""
        manifest = protocol_manifest(self._interactions)
        manifest["metadata"] = {"name": self.name, "version": self.version}
        return manifest

    def routes(self) -> dict[str, Route]:
        """The handlers by schema digest."""
        digest = self.digest
        return {
            model_digest(model): Route(model, self._interactions[model], handler, digest)
            for model, handler in self._handlers.items()
        }


class ErrorMessage(Model):
    """Error message model"""

    # uagents-core's ErrorMessage: same name, docstring and field, so the same digest
    # (model:...) and uagents agents read it. Its docstring is part of the digest.
    error: str
