"""Gas per payment when the payee settles once on chain after N payments.

The payee (the latency benchmark's merchant) received ``N`` payments on the ledger. It
withdraws its whole balance in one Withdrawal order (certified like a payment, through
:func:`bench.ledger.pay_one`) and a devnet agent redeems the certificate with the
wallet's ``VaultClient.redeem`` (one ``Vault.redeem`` transaction; the merchant holds no
USDF on chain, the dearer case).

    settlement_gas_per_payment = (redeem gas + deposit gas) / N

where the deposit gas is that of one ``Vault.deposit`` transaction (the payer side's
single deposit that funded the payments, measured when the benchmark deposited; the
one-time ERC-20 approval is left out). Both on-chain ends of N payments are charged to
them, which overstates the cost when one deposit funds more than N payments.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.ledger import Ledger, pay_one
from devnet.manifest import Manifest
from wallet.chain.client import VaultClient
from wallet.client.network import Network
from wallet.client.transport import Transport
from wallet.codec import parse_address
from wallet.signing import PrivateKey, sign_order
from wallet.types import Amount, Order, Sequence, Withdrawal


@dataclass(frozen=True, slots=True)
class Settlement:
    payments: int  # N
    withdrawn: int  # base units
    redeem_gas: int
    deposit_gas: int

    @property
    def gas_per_payment(self) -> float:
        return (self.redeem_gas + self.deposit_gas) / self.payments if self.payments else 0.0


async def settle(
    transport: Transport,
    network: Network,
    ledger: Ledger,
    m: Manifest,
    payee: PrivateKey,
    payments: int,
    deposit_gas: int,
    redeemer_agent: int,
) -> Settlement:
    """Withdraws ``payee``'s whole balance (at its sequence 0) and redeems it on chain."""
    state = await transport.get_account(ledger.nodes[0], payee.address)
    balance = state.balances.get(ledger.token, 0)
    if balance <= 0:
        raise RuntimeError("the payee received nothing to withdraw")
    order: Order = Withdrawal(
        payee.address, payee.address, ledger.token, Amount(balance), Sequence(state.next_sequence)
    )
    certificate = await pay_one(transport, network, sign_order(payee, ledger.domain, order))
    redeemer = PrivateKey.from_hex(m.agents[redeemer_agent].private_key)
    async with VaultClient(m.rpc_url, parse_address(m.contracts.vault), redeemer) as vault:
        result = await vault.redeem(certificate)
    if result.transaction is None:
        raise RuntimeError("the withdrawal was already redeemed")
    return Settlement(payments, balance, result.transaction.gas_used, deposit_gas)
