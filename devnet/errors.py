"""The errors of the devnet: one root, each subclass says what went wrong and what to run.

Hierarchy::

    DevnetError                          root; the CLI prints its message, no traceback
    ├── ConfigError (ValueError)         a bad option value (nodes < 1, a port out of range)
    ├── ToolchainMissingError            node_modules, anvil or a contract artifact is missing
    ├── PortInUseError (OSError)         the RPC port is taken before anvil starts
    ├── AnvilError                       anvil exited early or did not answer in time
    ├── AlreadyRunningError              `up` on a state dir whose processes are alive
    ├── NotRunningError                  no devnet in the state dir, or its chain is silent
    ├── StaleManifestError               the chain answers but is not the manifest's
    ├── ManifestError (ValueError)       the manifest or pid file is malformed
    ├── DeployError                      a deploy transaction failed or reverted
    └── StopError                        a process survived SIGKILL
"""

from __future__ import annotations


class DevnetError(Exception):
    """Root of every error the devnet raises on purpose."""


class ConfigError(DevnetError, ValueError):
    """An option value is out of range."""


class ToolchainMissingError(DevnetError):
    """Something the set-up step installs or builds is missing."""


class PortInUseError(DevnetError, OSError):
    """The port anvil should listen on is already taken."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"port {port} on {host} is in use: pass --port or run `devnet down`")
        self.host = host
        self.port = port


class AnvilError(DevnetError):
    """anvil exited before answering, or did not answer within the timeout."""


class AlreadyRunningError(DevnetError):
    """A devnet is already running in this state directory."""


class NotRunningError(DevnetError):
    """No devnet in this state directory, or its chain does not answer."""


class StaleManifestError(DevnetError):
    """The chain at the manifest's URL is not the one the manifest describes."""


class ManifestError(DevnetError, ValueError):
    """A state file is malformed; the message names the file and the field."""


class DeployError(DevnetError):
    """A deploy transaction could not be built or sent, or its receipt has status 0."""


class StopError(DevnetError):
    """A devnet process is still alive after SIGTERM and SIGKILL."""
