"""The simulated language model the provider sells, and the buyers' seeded workload.

The model answers exactly ``max_tokens`` words, chosen deterministically from the prompt
(the same request always gets the same answer). The workload is a sequence of requests
with prompts of varying length, drawn from a :class:`random.Random` seeded per buyer, so
a run is reproducible from ``--seed``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from typing import Final

from devnet.trading.pricing import ModelRequest, parse_request

VOCABULARY: Final = tuple(
    """the a ledger agent pays quorum node vote certificate token chain price feed budget
    receipt quote offer accept counter metered unit input output model answer signed
    checkpoint epoch committee vault deposit withdraw redeem balance account session
    message envelope directory mailbox record service provider buyer seller farthing
    micropayment settlement gas block final fast honest byzantine broadcast proof merkle
    tree leaf root hash digest key address wallet policy spend limit rolling window""".split()  # noqa: SIM905
)

#: Prompt lengths (words) and answer lengths (tokens) of the workload.
PROMPT_WORDS: Final = (4, 120)
ANSWER_TOKENS: Final = (8, 200)


def complete(request: ModelRequest) -> str:
    """The model's answer: exactly ``request.max_tokens`` words, determined by the prompt."""
    seed = hashlib.sha256(f"{request.max_tokens}:{request.prompt}".encode()).digest()
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCABULARY) for _ in range(request.max_tokens))


async def serve(body: str) -> str:
    """The seller's ``serve``: the answer to a (paid, already priced) request body."""
    return complete(parse_request(body))


def workload(seed: int, buyer: int) -> Iterator[ModelRequest]:
    """Buyer ``buyer``'s endless stream of requests for ``seed``."""
    rng = random.Random(f"farthing-trade:{seed}:{buyer}")
    while True:
        words = rng.randint(*PROMPT_WORDS)
        prompt = " ".join(rng.choice(VOCABULARY) for _ in range(words))
        yield ModelRequest(prompt, rng.randint(*ANSWER_TOKENS))
