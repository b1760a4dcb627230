"""Farthing's settlement contracts: Solidity sources in ``src/``, compiled artifacts in
``artifacts/`` (committed, so nothing needs a compiler to run or test), and this loader.

Public API: :func:`load_artifact`, :class:`Artifact`, :data:`CONTRACT_NAMES`.
``build.py`` (``python -m contracts.build``) recompiles with solc-js.
"""

from contracts.artifacts_loader import CONTRACT_NAMES, Artifact, ArtifactError, load_artifact

__all__ = ["CONTRACT_NAMES", "Artifact", "ArtifactError", "load_artifact"]
