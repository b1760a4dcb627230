"""The main job (``devnet trade``, ``./run.sh``): a provider agent sells a simulated
language model per token, buyer agents find it in the nodes' directory, negotiate and pay
for every request on the devnet, the provider withdraws and redeems its earnings, and a
summary checks that everything reconciles (docs/main-job.md).

Modules, one responsibility each: :mod:`.pricing` (the price list and its arithmetic),
:mod:`.model` (the simulated model and the seeded workload), :mod:`.checks` (the
reconciliation checks, pure), :mod:`.views` (reads of the nodes and the chain),
:mod:`.resolving` (a caching directory resolver), :mod:`.provider` and :mod:`.buyer` (the
agents), :mod:`.progress` (the live status line), :mod:`.job` (the whole run).
"""
