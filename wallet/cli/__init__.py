"""``farthing-wallet`` (also ``python -m wallet``): the agent wallet's command line.

Commands: ``new``, ``import``, ``address``, ``balance``, ``deposit``, ``pay``,
``withdraw``, ``redeem``, ``history``, ``verify``, ``committee``, ``policy
show|set|reset|spent``. Readable tables by default, one JSON document with ``--json``;
exit codes in :mod:`wallet.cli.app`; docs/agent-guide.md "The command line".

Modules: :mod:`~wallet.cli.app` (parser, errors, exit codes), :mod:`~wallet.cli.commands`
(the commands), :mod:`~wallet.cli.context` (the wallet home, the network, parsing what
people type), :mod:`~wallet.cli.output` (tables, JSON, progress).
"""

from wallet.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
