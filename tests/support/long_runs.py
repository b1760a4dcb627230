"""``FARTHING_LONG=1`` selects the long forms of the fault, fuzz and soak tests (chaos with
50+ kills, five times the fuzz cases, a 10-minute soak); unset or ``0``: the bounded
forms CI runs. Any other value is refused, so that a typo cannot silently run the
short forms."""

from __future__ import annotations

import os

_VALUE = os.environ.get("FARTHING_LONG", "")
if _VALUE not in ("", "0", "1"):
    raise RuntimeError(f"FARTHING_LONG must be 1 (long runs), 0 or unset, not {_VALUE!r}")

LONG = _VALUE == "1"
