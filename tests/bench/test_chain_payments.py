"""bench.chain_payments: EIP-3009 authorizations against eth-account's EIP-712 encoder,
and the calldata."""

from __future__ import annotations

from eth_abi.abi import decode, encode
from eth_account.messages import encode_typed_data

from bench.chain_payments import (
    authorization_data,
    authorization_digest,
    sign_authorization,
    transfer_data,
)
from wallet.keccak import keccak256
from wallet.signing import PrivateKey, recover

TOKEN = "0x" + "12" * 20
DOMAIN = {"name": "Farthing USD", "version": "1", "chainId": 31337, "verifyingContract": TOKEN}


def domain_separator() -> bytes:
    typehash = keccak256(
        b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    return keccak256(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [typehash, keccak256(b"Farthing USD"), keccak256(b"1"), 31337, TOKEN],
        )
    )


def test_the_digest_is_eip712_of_transfer_with_authorization() -> None:
    key = PrivateKey.generate()
    payee = bytes(range(20))
    a = sign_authorization(key, domain_separator(), payee, 1234)
    message = {
        "from": "0x" + key.address.hex(),
        "to": "0x" + payee.hex(),
        "value": 1234,
        "validAfter": a.valid_after,
        "validBefore": a.valid_before,
        "nonce": a.nonce,
    }
    types = {
        "TransferWithAuthorization": [
            {"name": "from", "type": "address"},
            {"name": "to", "type": "address"},
            {"name": "value", "type": "uint256"},
            {"name": "validAfter", "type": "uint256"},
            {"name": "validBefore", "type": "uint256"},
            {"name": "nonce", "type": "bytes32"},
        ]
    }
    signable = encode_typed_data(DOMAIN, types, message)
    expected = keccak256(b"\x19" + signable.version + signable.header + signable.body)
    assert authorization_digest(domain_separator(), a) == expected
    assert recover(expected, a.signature) == key.address


def test_authorizations_have_fresh_random_nonces() -> None:
    key = PrivateKey.generate()
    nonces = {sign_authorization(key, domain_separator(), bytes(20), 1).nonce for _ in range(8)}
    assert len(nonces) == 8


def test_calldata_decodes_to_the_arguments() -> None:
    key = PrivateKey.generate()
    a = sign_authorization(key, domain_separator(), bytes(range(20)), 99)
    data = authorization_data(a)
    assert (
        data[:4]
        == keccak256(
            b"transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,"
            b"bytes32,bytes32)"
        )[:4]
    )
    fields = decode(
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
        data[4:],
    )
    assert bytes.fromhex(fields[0][2:]) == key.address
    assert fields[2] == 99
    assert fields[6] in (27, 28)
    assert fields[7] + fields[8] + bytes((fields[6],)) == a.signature

    transfer = transfer_data(bytes(range(20)), 5)
    assert transfer[:4] == bytes.fromhex("a9059cbb")
    assert decode(["address", "uint256"], transfer[4:])[1] == 5


def test_combine_adds_runs_up() -> None:
    from bench.chain_payments import combine
    from bench.rpc import ChainRun

    total = combine([ChainRun(2, 2, 0.5, (10, 20)), ChainRun(3, 2, 1.5, (30, 40))])
    assert (total.sent, total.confirmed, total.seconds) == (5, 4, 2.0)
    assert total.per_s == 2.0
    assert total.mean_gas == 25
