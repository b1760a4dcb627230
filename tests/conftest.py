"""Suite-wide settings.

Under CI (the CI variable is set) hypothesis runs derandomized: the same examples every
run, so a landing never depends on luck; developers' runs keep exploring new examples."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
