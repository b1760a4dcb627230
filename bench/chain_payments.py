"""Payments on the chain itself, on the devnet's anvil, for comparison with Farthing.

* **ERC-20**: ``senders`` fresh accounts (ETH and USDF from a devnet agent) each send
  ``transfer(next sender, amount)`` of the stable token (USDF, ``contracts.stable``),
  round robin until ``count`` transfers.
* **EIP-3009** (how x402's ``exact`` scheme pays per request): the same senders sign
  ``TransferWithAuthorization`` (EIP-712 under the token's domain, a random 32-byte
  nonce, the draft ERC3009 of OpenZeppelin that FarthingUSD implements) and one relayer
  account submits ``transferWithAuthorization`` for each.

Every transaction (and authorization) is signed before the clock starts: the timed part
is sending them and getting every receipt (:func:`bench.rpc.send_and_confirm`: one
transaction in flight per sending account), the chain's best case (the Farthing side
signs inside its timed loop). Both run in rounds, alternately (:func:`run_interleaved`):
anvil gets slower as blocks pile up (one account sending one after another here: 241/s
over the first 500 blocks, 84/s after 2,500), so neither gets the fresher chain.
Confirmed per second counts receipts with status 1; gas is the mean ``gasUsed`` of those
receipts.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount

from bench.rpc import ChainRun, Rpc, send_and_confirm
from wallet.keccak import keccak256
from wallet.signing import PrivateKey
from wallet.types import Hash32

TRANSFER_GAS = 100_000
AUTHORIZATION_GAS = 200_000
_TRANSFER = keccak256(b"transfer(address,uint256)")[:4]
_TRANSFER_WITH_AUTHORIZATION = keccak256(
    b"transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
)[:4]
_DOMAIN_SEPARATOR = keccak256(b"DOMAIN_SEPARATOR()")[:4]
TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
    b"TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
    b"uint256 validBefore,bytes32 nonce)"
)
VALID_BEFORE = 2**48  # far in the future: validity windows are not what is measured


@dataclass(frozen=True, slots=True)
class Fees:
    chain_id: int
    max_fee: int
    tip: int


@dataclass(frozen=True, slots=True)
class Authorization:
    """An EIP-3009 ``TransferWithAuthorization`` and its signer's signature."""

    payer: bytes
    payee: bytes
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes
    signature: bytes  # r ‖ s ‖ v, v in {27, 28}


def sign_tx(
    account: LocalAccount, fees: Fees, nonce: int, to: str, data: bytes, gas: int, value: int = 0
) -> bytes:
    """An EIP-1559 transaction signed by ``account`` (raw bytes)."""
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": fees.chain_id,
        "nonce": nonce,
        "to": to,
        "value": value,
        "data": data,
        "gas": gas,
        "maxFeePerGas": fees.max_fee,
        "maxPriorityFeePerGas": fees.tip,
    }
    return bytes(account.sign_transaction(tx).raw_transaction)


def transfer_data(to: bytes, amount: int) -> bytes:
    """Calldata of ``transfer(to, amount)``."""
    return _TRANSFER + encode(["address", "uint256"], [to, amount])


def authorization_digest(domain_separator: bytes, a: Authorization) -> Hash32:
    """The EIP-712 digest a payer signs: ``keccak(0x1901 ‖ domainSeparator ‖
    keccak(abi.encode(TYPEHASH, from, to, value, validAfter, validBefore, nonce)))``."""
    struct = keccak256(
        encode(
            ["bytes32", "address", "address", "uint256", "uint256", "uint256", "bytes32"],
            [
                TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
                a.payer,
                a.payee,
                a.value,
                a.valid_after,
                a.valid_before,
                a.nonce,
            ],
        )
    )
    return Hash32(keccak256(b"\x19\x01" + domain_separator + struct))


def sign_authorization(
    key: PrivateKey, domain_separator: bytes, payee: bytes, value: int
) -> Authorization:
    """``key``'s authorization to pay ``value`` to ``payee``, with a random nonce."""
    unsigned = Authorization(
        key.address, payee, value, 0, VALID_BEFORE, secrets.token_bytes(32), b""
    )
    signature = key.unsafe_sign_digest(authorization_digest(domain_separator, unsigned))
    return Authorization(
        unsigned.payer, payee, value, 0, VALID_BEFORE, unsigned.nonce, bytes(signature)
    )


def authorization_data(a: Authorization) -> bytes:
    """Calldata of ``transferWithAuthorization(from, to, value, validAfter, validBefore,
    nonce, v, r, s)``."""
    r, s, v = a.signature[:32], a.signature[32:64], a.signature[64]
    return _TRANSFER_WITH_AUTHORIZATION + encode(
        [
            "address",
            "address",
            "uint256",
            "uint256",
            "uint256",
            "bytes32",
            "uint8",
            "bytes32",
            "bytes32",
        ],
        [a.payer, a.payee, a.value, a.valid_after, a.valid_before, a.nonce, v, r, s],
    )


async def fees(rpc: Rpc) -> Fees:
    block = await rpc.call("eth_getBlockByNumber", ["latest", False])
    base = int(block["baseFeePerGas"], 16)
    tip = 10**9
    return Fees(int(await rpc.call("eth_chainId", []), 16), 4 * base + tip, tip)


async def nonce_of(rpc: Rpc, address: str) -> int:
    return int(await rpc.call("eth_getTransactionCount", [address, "pending"]), 16)


async def fund_senders(
    rpc: Rpc, funder: LocalAccount, token: str, senders: Sequence[LocalAccount], usdf: int
) -> None:
    """The funder sends each sender 1 ETH and ``usdf`` base units of the token (before
    the clock; 2 transactions per sender, one after another)."""
    f = await fees(rpc)
    nonce = await nonce_of(rpc, funder.address)
    raws = []
    for sender in senders:
        raws.append(sign_tx(funder, f, nonce, sender.address, b"", 21_000, value=10**18))
        raws.append(
            sign_tx(
                funder,
                f,
                nonce + 1,
                token,
                transfer_data(bytes.fromhex(sender.address[2:]), usdf),
                TRANSFER_GAS,
            )
        )
        nonce += 2
    run = await send_and_confirm(rpc, [raws])
    if run.confirmed != len(raws):
        raise RuntimeError(f"funding: {len(raws) - run.confirmed} transactions failed")


def new_senders(count: int) -> list[LocalAccount]:
    """Fresh chain accounts (random keys, never shown)."""
    return [Account.create() for _ in range(count)]


async def erc20_rounds(
    rpc: Rpc, token: str, senders: Sequence[LocalAccount], count: int, amount: int
) -> list[list[bytes]]:
    """``count`` ERC-20 transfers signed beforehand, in rounds: in each, every sender ``i``
    pays sender ``i + 1`` once (the last round may be partial)."""
    f = await fees(rpc)
    nonces = [await nonce_of(rpc, s.address) for s in senders]
    rounds: list[list[bytes]] = []
    for n in range(count):
        i = n % len(senders)
        if i == 0:
            rounds.append([])
        payee = bytes.fromhex(senders[(i + 1) % len(senders)].address[2:])
        data = transfer_data(payee, amount)
        rounds[-1].append(sign_tx(senders[i], f, nonces[i], token, data, TRANSFER_GAS))
        nonces[i] += 1
    return rounds


async def eip3009_rounds(
    rpc: Rpc,
    token: str,
    payers: Sequence[LocalAccount],
    relayer: LocalAccount,
    count: int,
    amount: int,
) -> list[list[bytes]]:
    """``count`` authorizations (payer ``i`` paying payer ``i + 1``, a random nonce each)
    and the relayer's ``transferWithAuthorization`` transactions carrying them, signed
    beforehand, in rounds of one authorization per payer."""
    separator = bytes.fromhex(
        str(
            await rpc.call(
                "eth_call", [{"to": token, "data": "0x" + _DOMAIN_SEPARATOR.hex()}, "latest"]
            )
        )[2:]
    )
    keys = [PrivateKey(bytes(p.key)) for p in payers]
    f = await fees(rpc)
    nonce = await nonce_of(rpc, relayer.address)
    rounds: list[list[bytes]] = []
    for n in range(count):
        i = n % len(keys)
        if i == 0:
            rounds.append([])
        a = sign_authorization(keys[i], separator, keys[(i + 1) % len(keys)].address, amount)
        data = authorization_data(a)
        rounds[-1].append(sign_tx(relayer, f, nonce + n, token, data, AUTHORIZATION_GAS))
    return rounds


async def run_interleaved(
    rpc: Rpc, erc20: Sequence[Sequence[bytes]], eip3009: Sequence[Sequence[bytes]]
) -> tuple[ChainRun, ChainRun]:
    """Round ``k`` of the ERC-20 transfers (every sender's transaction at once), then round
    ``k`` of the EIP-3009 payments (the relayer's, one after another), alternately: anvil
    slows down as blocks pile up, and both should see the same chain. Each result sums
    its rounds (their times, not the other's)."""
    erc20_runs, eip3009_runs = [], []
    for k in range(max(len(erc20), len(eip3009))):
        if k < len(erc20):
            erc20_runs.append(await send_and_confirm(rpc, [[raw] for raw in erc20[k]]))
        if k < len(eip3009):
            eip3009_runs.append(await send_and_confirm(rpc, [eip3009[k]]))
    return combine(erc20_runs), combine(eip3009_runs)


def combine(runs: Sequence[ChainRun]) -> ChainRun:
    """Runs one after another as one: counts, times and gas added up."""
    return ChainRun(
        sent=sum(r.sent for r in runs),
        confirmed=sum(r.confirmed for r in runs),
        seconds=sum(r.seconds for r in runs),
        gas_used=tuple(g for r in runs for g in r.gas_used),
    )
