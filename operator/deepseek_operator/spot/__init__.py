"""The spot capacity controller: on-demand fallback on spot shortage and interruption, the move back to spot
with hysteresis, the opt-in spill of on-demand replicas to spot.

- `decide`: the pure decision (policy, observations, previous status and the time in; status out);
- `observe`: the pod and node summaries of `deepseek_operator.indexes` turned into observations;
- `controller`: the kopf layer (observe, decide, act: status, events, metrics, the reconcile).
"""
