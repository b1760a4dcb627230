"""The provider's price list and its arithmetic (pure; docs/main-job.md "Pricing").

A simulated language model priced like a hosted one: $3 per million input tokens and $15
per million output tokens. The metered unit is one input token: 3 base units of USDF (6
decimals) = $0.000003 = $3 per million. An output token costs :data:`OUTPUT_UNITS` = 5
units ($15 per million). A request's body is JSON ``{"prompt": str, "max_tokens": int}``;
tokens are whitespace-separated words; the model answers exactly ``max_tokens`` words, so
a request costs ``words(prompt) + 5 * max_tokens`` units, known before it is served.

In FAR (18 decimals), the unit price is the USDF price converted at the price feed's
reading, rounded **up** to a whole base unit (the provider never sells below its USD
price): ``ceil(3 * 10**(18 - 6) * 10**feed_decimals / answer)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

#: USDF base units per metered unit (one input token): 3 * 10**-6 USD.
USDF_UNIT_PRICE: Final = 3
USDF_DECIMALS: Final = 6
FAR_DECIMALS: Final = 18
#: Units per output token: 5 * $3 = $15 per million.
OUTPUT_UNITS: Final = 5
#: The largest request accepted (input words, output tokens).
MAX_PROMPT_WORDS: Final = 4_096
MAX_TOKENS: Final = 4_096

#: The services in the directory and the provider's price list, one per token.
SERVICE_USDF: Final = "sim-llm.usdf"
SERVICE_FAR: Final = "sim-llm.far"


class ModelRequestError(ValueError):
    """A request body that is not ``{"prompt": str, "max_tokens": int}`` within limits."""


@dataclass(frozen=True, slots=True)
class ModelRequest:
    prompt: str
    max_tokens: int

    def body(self) -> str:
        """The request's JSON body (what the buyer sends and the seller prices)."""
        return json.dumps({"prompt": self.prompt, "max_tokens": self.max_tokens})


def parse_request(body: str) -> ModelRequest:
    """The request in ``body``; :class:`ModelRequestError` if it is malformed or too large."""
    try:
        data = json.loads(body)
    except ValueError:
        raise ModelRequestError("the body is not JSON") from None
    if not isinstance(data, dict) or set(data) != {"prompt", "max_tokens"}:
        raise ModelRequestError('expected {"prompt": str, "max_tokens": int}')
    prompt, max_tokens = data["prompt"], data["max_tokens"]
    if not isinstance(prompt, str) or type(max_tokens) is not int:
        raise ModelRequestError('expected {"prompt": str, "max_tokens": int}')
    if not 1 <= max_tokens <= MAX_TOKENS:
        raise ModelRequestError(f"max_tokens must be in 1..{MAX_TOKENS}")
    if input_tokens(prompt) > MAX_PROMPT_WORDS:
        raise ModelRequestError(f"the prompt has more than {MAX_PROMPT_WORDS} tokens")
    return ModelRequest(prompt, max_tokens)


def input_tokens(prompt: str) -> int:
    """The prompt's tokens: its whitespace-separated words."""
    return len(prompt.split())


def request_units(request: ModelRequest) -> int:
    """What a request costs in units: input tokens + 5 x output tokens."""
    return input_tokens(request.prompt) + OUTPUT_UNITS * request.max_tokens


def cost(body: str) -> int:
    """The ``Offer(cost=...)`` of both services: the units a request body costs."""
    return request_units(parse_request(body))


def far_unit_price(answer: int, feed_decimals: int, usdf_unit_price: int = USDF_UNIT_PRICE) -> int:
    """The unit price in FAR base units at the feed's reading (``answer`` USD per FAR,
    scaled by ``10**feed_decimals``), rounded up."""
    if answer <= 0:
        raise ValueError(f"the price feed's answer must be positive, got {answer}")
    numerator = usdf_unit_price * 10 ** (FAR_DECIMALS - USDF_DECIMALS + feed_decimals)
    return int(-(-numerator // answer))


def terms(symbol: str, unit_price: int, *, answer: int | None = None, decimals: int = 0) -> str:
    """The quote's terms: the metering rule and, for FAR, the conversion."""
    rule = (
        f"metered: 1 unit = 1 input token (whitespace-separated word of the prompt); "
        f"1 output token = {OUTPUT_UNITS} units; a request costs words(prompt) + "
        f"{OUTPUT_UNITS} * max_tokens units, paid before it is served; $3 per million units "
        f"(= $3/M input, $15/M output tokens); {unit_price} {symbol} base units per unit"
    )
    if answer is None:
        return rule
    return (
        f"{rule}, = ceil({USDF_UNIT_PRICE} * 10**{FAR_DECIMALS - USDF_DECIMALS + decimals} / "
        f"{answer}) at the price feed's reading of {answer} (10**-{decimals} USD per FAR)"
    )


def usd_micros(units: int, unit_price: int, *, answer: int | None = None, decimals: int = 0) -> int:
    """The USD value of ``units`` units at ``unit_price``, in 10**-6 USD (rounded up):
    USDF base units as they are, FAR base units at the feed's reading."""
    amount = units * unit_price
    if answer is None:
        return amount
    numerator = amount * answer * 10**USDF_DECIMALS
    return int(-(-numerator // 10 ** (FAR_DECIMALS + decimals)))
