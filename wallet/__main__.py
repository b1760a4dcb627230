"""``python -m wallet``: the wallet's command line (``farthing-wallet``)."""

import sys

from wallet.cli import main

sys.exit(main())
