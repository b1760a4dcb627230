"""Property: over random sequences of USDF mints, transfers, EIP-3009 authorizations,
cancellations, replays and burns, the chain matches a simple model. totalSupply equals the
sum of the balances of every account involved, and no (authorizer, nonce) is usable twice.

Each hypothesis example runs between its own evm_snapshot and evm_revert, so examples are
independent of each other (and of the surrounding per-test snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from tests.contracts.chain import (
    TOKEN_TYPES,
    domain,
    evm_revert,
    evm_snapshot,
    expect_revert,
    latest_timestamp,
    sign_digest,
    transact,
    typed_digest,
)
from tests.contracts.conftest import USDF, Deployment

#: Actors by index: the minter first (it mints to anyone and burns its own balance).
ACTORS = ("gov", "alice", "bob", "carol", "outsider")
NONCES = tuple(bytes([i]) * 32 for i in range(1, 3))  # a small pool, so nonces collide

actor = st.integers(0, len(ACTORS) - 1)
payer = st.one_of(st.sampled_from([1, 2]), actor)  # mostly alice or bob: nonces collide more
amount = st.one_of(st.integers(0, 3), st.integers(0, 12_000 * USDF))
nonce = st.integers(0, len(NONCES) - 1)
operation = st.one_of(
    st.tuples(st.just("mint"), actor, amount),
    st.tuples(st.just("transfer"), actor, actor, amount),
    st.tuples(st.just("authorize"), payer, actor, amount, nonce, actor),
    st.tuples(st.just("cancel"), payer, nonce),
    st.tuples(st.just("replay"), st.integers(0, 7)),
    st.tuples(st.just("burn"), amount),
)


@dataclass
class Model:
    balances: dict[str, int]
    supply: int
    used: set[tuple[str, bytes]] = field(default_factory=set)
    executed: list[tuple[Any, ...]] = field(default_factory=list)  # successful authorizations


def sign_authorization(
    dep: Deployment, payer: LocalAccount, to: str, value: int, nonce: bytes, valid_before: int
) -> tuple[Any, ...]:
    message = {
        "from": payer.address,
        "to": to,
        "value": value,
        "validAfter": 0,
        "validBefore": valid_before,
        "nonce": nonce,
    }
    dom = domain(dep.chain_id, dep.usdf.address, name="Farthing USD")
    r, s, v = sign_digest(
        payer, typed_digest(dom, "TransferWithAuthorization", message, types=TOKEN_TYPES)
    )
    return (payer.address, to, value, 0, valid_before, nonce, v, r, s)


def sign_cancellation(dep: Deployment, authorizer: LocalAccount, nonce: bytes) -> tuple[Any, ...]:
    dom = domain(dep.chain_id, dep.usdf.address, name="Farthing USD")
    digest = typed_digest(
        dom,
        "CancelAuthorization",
        {"authorizer": authorizer.address, "nonce": nonce},
        types=TOKEN_TYPES,
    )
    r, s, v = sign_digest(authorizer, digest)
    return (authorizer.address, nonce, v, r, s)


def eth_calls(dep: Deployment, calls: list[tuple[str, str]]) -> list[int]:
    """Results, as integers, of ``(to, calldata)`` eth_calls sent in one raw JSON-RPC batch
    (web3's batching re-encodes and re-validates every call, which dominates the runtime)."""
    provider: Any = dep.w3.provider
    responses = provider.make_batch_request(
        [("eth_call", [{"to": to, "data": data}, "latest"]) for to, data in calls]
    )
    assert isinstance(responses, list), responses
    return [int(r["result"], 16) for r in sorted(responses, key=lambda r: r["id"])]


_STATE_CALLS: dict[tuple[str, ...], list[tuple[str, str]]] = {}


def _state_calls(dep: Deployment, holders: tuple[str, ...]) -> list[tuple[str, str]]:
    usdf = dep.usdf
    key = (usdf.address, *holders)
    if key not in _STATE_CALLS:
        _STATE_CALLS[key] = [(usdf.address, usdf.encode_abi("totalSupply"))] + [
            (usdf.address, usdf.encode_abi("balanceOf", args=[h])) for h in holders
        ]
    return _STATE_CALLS[key]


def read_state(dep: Deployment, holders: tuple[str, ...]) -> tuple[int, dict[str, int]]:
    """totalSupply and the holders' balances."""
    supply, *balances = eth_calls(dep, _state_calls(dep, holders))
    return supply, dict(zip(holders, balances, strict=True))


def step(dep: Deployment, model: Model, op: tuple[Any, ...], valid_before: int) -> None:
    usdf = dep.usdf.functions
    accounts: list[LocalAccount] = [getattr(dep, name) for name in ACTORS]
    gov = dep.gov.address
    bal = model.balances
    kind = op[0]
    if kind == "mint":
        _, to, value = op
        event("mint")
        transact(usdf.mint(accounts[to].address, value), gov)
        bal[accounts[to].address] += value
        model.supply += value
    elif kind == "transfer":
        _, src, dst, value = op
        payer, payee = accounts[src].address, accounts[dst].address
        if value > bal[payer]:
            event("transfer: insufficient balance")
            expect_revert(
                usdf.transfer(payee, value),
                payer,
                "ERC20InsufficientBalance",
                payer,
                bal[payer],
                value,
            )
            return
        event("transfer: paid")
        transact(usdf.transfer(payee, value), payer)
        bal[payer] -= value
        bal[payee] += value
    elif kind == "authorize":
        _, src, dst, value, n, submitter = op
        payer, payee = accounts[src].address, accounts[dst].address
        args = sign_authorization(dep, accounts[src], payee, value, NONCES[n], valid_before)
        fn = usdf.transferWithAuthorization(*args)
        relayer = accounts[submitter].address
        if (payer, NONCES[n]) in model.used:
            event("authorize: nonce already used")
            expect_revert(fn, relayer, "ERC3009UsedAuthorization", payer, NONCES[n])
        elif value > bal[payer]:
            event("authorize: insufficient balance")
            expect_revert(fn, relayer, "ERC20InsufficientBalance", payer, bal[payer], value)
        else:
            event("authorize: paid")
            transact(fn, relayer)
            model.used.add((payer, NONCES[n]))
            model.executed.append(args)
            bal[payer] -= value
            bal[payee] += value
    elif kind == "cancel":
        _, who, n = op
        authorizer = accounts[who].address
        fn = usdf.cancelAuthorization(*sign_cancellation(dep, accounts[who], NONCES[n]))
        if (authorizer, NONCES[n]) in model.used:
            event("cancel: nonce already used")
            expect_revert(fn, gov, "ERC3009UsedAuthorization", authorizer, NONCES[n])
        else:
            event("cancel: done")
            transact(fn, gov)
            model.used.add((authorizer, NONCES[n]))
    elif kind == "replay":
        if model.executed:
            event("replay")
            args = model.executed[op[1] % len(model.executed)]
            expect_revert(
                usdf.transferWithAuthorization(*args),
                dep.outsider.address,
                "ERC3009UsedAuthorization",
                args[0],
                args[5],
            )
    elif kind == "burn":
        _, value = op
        if value > bal[gov]:
            event("burn: insufficient balance")
            expect_revert(usdf.burn(value), gov, "ERC20InsufficientBalance", gov, bal[gov], value)
            return
        event("burn: done")
        transact(usdf.burn(value), gov)
        bal[gov] -= value
        model.supply -= value
    else:  # pragma: no cover - the strategy makes no other kind
        raise AssertionError(kind)


# Every example talks to anvil (~0.1-0.3 s), so a failure is reported as one bug, shrunk,
# without the slow "explain" phase: that keeps a red run to seconds rather than minutes.
@settings(
    max_examples=30,
    deadline=None,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(operation, min_size=3, max_size=10))
def test_supply_is_conserved_and_authorizations_are_single_use(
    dep: Deployment, ops: list[tuple[Any, ...]]
) -> None:
    w3 = dep.w3
    snapshot = evm_snapshot(w3)
    try:
        holders = (*(getattr(dep, name).address for name in ACTORS), dep.vault.address)
        supply, balances = read_state(dep, holders)
        # Every example starts from the deployment's state (the previous one was reverted),
        # and everyone who holds USDF there is among the holders.
        assert list(balances.values()) == [0, 5_000 * USDF, 10_000 * USDF, USDF, 0, 5_000 * USDF]
        assert supply == sum(balances.values())
        model = Model(balances=balances, supply=supply)
        valid_before = latest_timestamp(w3) + 3600

        for op in ops:
            step(dep, model, op, valid_before)
            supply, balances = read_state(dep, holders)
            assert supply == sum(balances.values()) == model.supply
            assert balances == model.balances

        # Exactly the (authorizer, nonce) pairs the model consumed are used on chain.
        pairs = [(h, n) for h in holders for n in NONCES]
        usdf = dep.usdf
        states = eth_calls(
            dep,
            [(usdf.address, usdf.encode_abi("authorizationState", args=[h, n])) for h, n in pairs],
        )
        assert {pair for pair, used in zip(pairs, states, strict=True) if used} == model.used
    finally:
        evm_revert(w3, snapshot)
