"""The Farthing agent wallet library (issue 4): keys, the protocol's message types and
their EIP-712 encoding, the client of the node network, chain helpers, the agent runtime.

It is the lower layer: it never imports ``node`` (``tests/test_layering.py``).
"""
