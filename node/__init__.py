"""The Farthing ledger node (issue 3): a pure state machine inside an async shell.

It imports the protocol types from ``wallet``; ``wallet`` never imports it.
"""
