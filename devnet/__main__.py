"""``python -m devnet``: the same as the ``devnet`` command."""

import sys

from devnet.cli import main

sys.exit(main())
