"""Test-only helpers for the contract suite: transactions, custom-error decoding and
EIP-712 signing with eth-account (the reference encoder the protocol is checked against).

Accounts come from anvil's PUBLIC test mnemonic; none of these keys may hold real funds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from contracts import load_artifact
from scripts.gen_eip712_vectors import FIELDS as EIP712_FIELDS

#: anvil's default mnemonic: PUBLIC TEST KEYS, never for real funds.
PUBLIC_TEST_MNEMONIC = "test test test test test test test test test test test junk"

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

EIP712_DOMAIN = [{"name": n, "type": t} for n, t in EIP712_FIELDS["EIP712Domain"]]
#: eth-account's shape of the protocol's EIP-712 types, from the one reference list
#: (scripts/gen_eip712_vectors.py), not from the wallet under test.
TYPES: dict[str, list[dict[str, str]]] = {
    name: [{"name": n, "type": t} for n, t in fields]
    for name, fields in EIP712_FIELDS.items()
    if name != "EIP712Domain"
}


@cache
def dev_account(index: int) -> LocalAccount:
    """Account ``index`` of the public test mnemonic (anvil prefunds it with ETH)."""
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(PUBLIC_TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


# ---------------------------------------------------------------- transactions


def transact(fn: ContractFunction, sender: str, value: int = 0) -> TxReceipt:
    """Send ``fn`` from an (anvil-unlocked) account; asserts the transaction succeeded."""
    tx_hash = fn.transact({"from": sender, "value": value})
    receipt = fn.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert receipt["status"] == 1, f"transaction failed: {receipt}"
    return receipt


def deploy(w3: Web3, name: str, sender: str, *args: Any) -> Contract:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx_hash = factory.constructor(*args).transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert receipt["status"] == 1
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)


@cache
def _error_selectors() -> dict[bytes, tuple[str, list[str]]]:
    from contracts.artifacts_loader import CONTRACT_NAMES
    from contracts.build import TEST_HARNESS_NAMES

    selectors: dict[bytes, tuple[str, list[str]]] = {}
    for name in CONTRACT_NAMES + TEST_HARNESS_NAMES:
        for item in load_artifact(name).abi:
            if item["type"] == "error":
                types = [i["type"] for i in item["inputs"]]
                signature = f"{item['name']}({','.join(types)})"
                selectors[keccak(text=signature)[:4]] = (item["name"], types)
    return selectors


@dataclass(frozen=True)
class Revert:
    name: str
    args: tuple[Any, ...]


def decode_revert(data: str) -> Revert:
    raw = bytes.fromhex(data.removeprefix("0x"))
    name, types = _error_selectors()[raw[:4]]
    from eth_abi import decode

    values = decode(types, raw[4:])
    return Revert(
        name,
        tuple(
            to_checksum_address(v) if t == "address" else v
            for t, v in zip(types, values, strict=True)
        ),
    )


def revert_of(fn: ContractFunction, sender: str) -> Revert:
    """The custom error ``fn`` reverts with when sent from ``sender`` (fails if it succeeds)."""
    try:
        fn.call({"from": sender})
    except ContractCustomError as exc:
        assert isinstance(exc.data, str)
        return decode_revert(exc.data)
    except ContractLogicError as exc:
        raise AssertionError(f"reverted without a custom error: {exc}") from exc
    raise AssertionError("call did not revert")


def expect_revert(fn: ContractFunction, sender: str, name: str, *args: Any) -> Revert:
    """Asserts that ``fn``, called from ``sender`` on the latest block, reverts with custom
    error ``name`` whose leading arguments are ``args``."""
    revert = revert_of(fn, sender)
    assert revert.name == name, f"expected {name}, got {revert}"
    assert revert.args[: len(args)] == args, f"expected {name}{args}, got {revert}"
    return revert


def events(contract: Contract, receipt: TxReceipt, event: str) -> list[dict[str, Any]]:
    """The ``event`` logs that ``contract`` emitted in ``receipt``, decoded."""
    processor = getattr(contract.events, event)()
    return [
        dict(e["args"])
        for e in processor.process_receipt(receipt, errors=DISCARD)
        if e["address"] == contract.address
    ]


# ---------------------------------------------------------------- EIP-712


def domain(chain_id: int, verifying_contract: str, name: str = "Farthing") -> dict[str, Any]:
    return {
        "name": name,
        "version": "1",
        "chainId": chain_id,
        "verifyingContract": verifying_contract,
    }


def typed_digest(
    dom: dict[str, Any],
    primary: str,
    message: dict[str, Any],
    types: dict[str, list[dict[str, str]]] | None = None,
) -> bytes:
    all_types = types or TYPES
    signable = encode_typed_data(
        full_message={
            "types": {"EIP712Domain": EIP712_DOMAIN, primary: all_types[primary]},
            "primaryType": primary,
            "domain": dom,
            "message": message,
        }
    )
    return bytes(_hash_eip191_message(signable))


def sign_digest(account: LocalAccount, digest: bytes) -> tuple[bytes, bytes, int]:
    """(r, s, v) of ``account``'s signature of ``digest`` (low-s, as eth-account signs)."""
    sig = account.unsafe_sign_hash(digest)
    return sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big"), sig.v


def compact(sig: tuple[bytes, bytes, int]) -> tuple[bytes, bytes]:
    """EIP-2098 form (r, vs) of an (r, s, v) signature, as the Vault takes it."""
    r, s, v = sig
    vs = int.from_bytes(s, "big") | ((v - 27) << 255)
    return r, vs.to_bytes(32, "big")


def high_s(sig: tuple[bytes, bytes, int]) -> tuple[bytes, bytes, int]:
    """The same signature with s replaced by n - s (valid for ecrecover, refused by EIP-2)."""
    r, s, v = sig
    return r, (SECP256K1_N - int.from_bytes(s, "big")).to_bytes(32, "big"), 55 - v


@dataclass(frozen=True)
class Withdrawal:
    account: str
    recipient: str
    token: str
    amount: int
    sequence: int

    def message(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "recipient": self.recipient,
            "token": self.token,
            "amount": self.amount,
            "sequence": self.sequence,
        }

    def as_tuple(self) -> tuple[str, str, str, int, int]:
        return (self.account, self.recipient, self.token, self.amount, self.sequence)


@dataclass(frozen=True)
class TransferOrder:
    payer: str
    payee: str
    token: str
    amount: int
    sequence: int
    reference: bytes = b"\x00" * 32

    def message(self) -> dict[str, Any]:
        return {
            "payer": self.payer,
            "payee": self.payee,
            "token": self.token,
            "amount": self.amount,
            "sequence": self.sequence,
            "reference": self.reference,
        }


def order_digest(dom: dict[str, Any], order: Withdrawal | TransferOrder) -> bytes:
    primary = "Withdrawal" if isinstance(order, Withdrawal) else "Transfer"
    return typed_digest(dom, primary, order.message())


def vote_digest(dom: dict[str, Any], order: bytes, epoch: int) -> bytes:
    return typed_digest(dom, "Vote", {"order": order, "epoch": epoch})


def vote(
    dom: dict[str, Any], member: LocalAccount, order: Withdrawal | TransferOrder, epoch: int
) -> tuple[bytes, bytes]:
    """``member``'s vote for ``order`` in ``epoch``, compact (r, vs)."""
    return compact(sign_digest(member, vote_digest(dom, order_digest(dom, order), epoch)))


def signer_bits(indexes: Sequence[int]) -> int:
    return sum(1 << i for i in set(indexes))


def certificate(
    dom: dict[str, Any],
    w: Withdrawal,
    epoch: int,
    committee: Sequence[LocalAccount],
    indexes: Sequence[int] = (0, 1, 2),
) -> tuple[Any, ...]:
    """A withdrawal certificate in the Vault's ABI shape, voted by the members of
    ``committee`` at ``indexes`` (votes in ascending index order)."""
    ordered = sorted(indexes)
    votes = [vote(dom, committee[i], w, epoch) for i in ordered]
    return (w.as_tuple(), epoch, signer_bits(ordered), votes)


def order_tuple(order: Withdrawal | TransferOrder) -> tuple[Any, ...]:
    """An order in the shape of the Vault's ``Order`` struct (for slashing evidence)."""
    if isinstance(order, Withdrawal):
        return (
            1,
            order.account,
            order.recipient,
            order.token,
            order.amount,
            order.sequence,
            b"\x00" * 32,
        )
    return (0, order.payer, order.payee, order.token, order.amount, order.sequence, order.reference)


# ---------------------------------------------------------------- token signatures, time, snapshots

_AUTHORIZATION_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
#: EIP-712 types of the tokens' EIP-2612 permit and OpenZeppelin's draft ERC-3009.
TOKEN_TYPES: dict[str, list[dict[str, str]]] = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "TransferWithAuthorization": _AUTHORIZATION_FIELDS,
    "ReceiveWithAuthorization": _AUTHORIZATION_FIELDS,
    "CancelAuthorization": [
        {"name": "authorizer", "type": "address"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


def latest_timestamp(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def advance_time(w3: Web3, seconds: int) -> None:
    """Moves the chain's clock forward by ``seconds`` and mines a block."""
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def evm_snapshot(w3: Web3) -> str:
    return str(w3.provider.make_request("evm_snapshot", [])["result"])  # type: ignore[arg-type]


def evm_revert(w3: Web3, snapshot: str) -> None:
    reverted = w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    assert reverted["result"] is True, reverted


def deploy_revert_of(w3: Web3, name: str, sender: str, *args: Any) -> Revert:
    """The custom error that deploying contract ``name`` with ``args`` reverts with."""
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    try:
        factory.constructor(*args).estimate_gas({"from": sender})
    except ContractCustomError as exc:
        assert isinstance(exc.data, str)
        return decode_revert(exc.data)
    raise AssertionError(f"deploying {name} did not revert")
