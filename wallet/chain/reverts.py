"""Reverts decoded to the contracts' custom errors by name (pure): every custom error of
the Vault, the two tokens and the price feed, plus Solidity's ``Error(string)`` and
``Panic(uint256)`` (:func:`decode_revert`), and a web3 revert turned into a
:class:`~wallet.errors.ContractReverted` that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from eth_abi.abi import decode as abi_decode
from web3.exceptions import ContractLogicError

from contracts import load_artifact
from wallet.codec import address_hex, parse_address
from wallet.errors import ContractReverted
from wallet.keccak import keccak256

_ERROR_SOURCES: Final = ("Vault", "FarthingUSD", "FarthingToken", "PriceFeed")


@dataclass(frozen=True, slots=True)
class RevertReason:
    """A decoded revert: the custom error's ``name`` and its named ``arguments``
    (addresses as EIP-55 text, bytes as ``0x`` hex)."""

    name: str
    arguments: tuple[tuple[str, object], ...]

    def __str__(self) -> str:
        shown = ", ".join(f"{n}={v}" for n, v in self.arguments)
        return f"{self.name}({shown})"


@cache
def _error_table() -> dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """selector → (name, argument names, argument types) of every custom error of the
    Farthing contracts, plus Solidity's ``Error(string)`` and ``Panic(uint256)``."""
    table: dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
        keccak256(b"Error(string)")[:4]: ("Error", ("message",), ("string",)),
        keccak256(b"Panic(uint256)")[:4]: ("Panic", ("code",), ("uint256",)),
    }
    for contract in _ERROR_SOURCES:
        for item in load_artifact(contract).abi:
            if item.get("type") != "error":
                continue
            types = tuple(str(i["type"]) for i in item["inputs"])
            names = tuple(str(i.get("name") or f"arg{k}") for k, i in enumerate(item["inputs"]))
            selector = keccak256(f"{item['name']}({','.join(types)})".encode())[:4]
            table[selector] = (str(item["name"]), names, types)
    return table


def _shown(kind: str, value: object) -> object:
    if kind == "address" and isinstance(value, str):
        return address_hex(parse_address(value.lower()))
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def decode_revert(data: bytes) -> RevertReason | None:
    """The custom error (of the Vault, the tokens or the price feed), revert string or
    panic that ``data`` encodes; None when its selector is unknown or it does not decode."""
    entry = _error_table().get(bytes(data[:4])) if len(data) >= 4 else None
    if entry is None:
        return None
    name, names, types = entry
    try:
        values = abi_decode(list(types), bytes(data[4:]))
    except Exception:  # eth_abi raises several kinds for short or bad data
        return None
    return RevertReason(
        name, tuple((n, _shown(t, v)) for n, t, v in zip(names, types, values, strict=True))
    )


def _revert_data(exc: ContractLogicError) -> bytes:
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


def _reverted(
    kind: type[ContractReverted],
    what: str,
    exc: ContractLogicError,
    suffix: str = "",
    **extra: Any,
) -> ContractReverted:
    data = _revert_data(exc)
    reason = decode_revert(data)
    if reason is not None:
        shown = str(reason)
    elif data:
        shown = f"an unknown error 0x{data[:4].hex()}"
    else:
        shown = exc.message or "reverted without a reason"
    return kind(
        f"{what} reverted: {shown}{suffix}",
        error=None if reason is None else reason.name,
        arguments=None if reason is None else dict(reason.arguments),
        data=data,
        **extra,
    )
