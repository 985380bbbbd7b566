"""Region failover: health checks of every region, a pure decision, and the switch of the traffic.

- `checks`: what one check of a region found, per signal (pure: from pod and node summaries, engine
  probe results and PromQL values);
- `decision`: the state machine (pure, the clock is an argument) from the previous
  `status.failover`, the checks and the spec to the next `status.failover`, its events and conditions;
- `queries`: the PromQL templates (jinja2, sandboxed) and their built-in defaults per engine;
- `observe`: the I/O that feeds the checks (one PromQL query per signal for every deployment, engine
  probes where the cheaper signals are not conclusive);
- `controller`: the kopf-facing loop: observe, decide, act (status, reconcile, events, metrics).
"""
