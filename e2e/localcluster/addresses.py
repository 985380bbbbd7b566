"""Loopback addresses of the pods that the local cluster really runs.

kwok invents pod IPs (10.244.x.y) that belong to nobody: nothing may ever send a packet there. A pod whose
process really runs gets a loopback address of its own in this annotation (IPv4, no port; the process
listens there on the container port), and only such pods are ever contacted (e.g. scraped by Prometheus).
"""

from __future__ import annotations

LOOPBACK_ADDRESS_ANNOTATION = "localcluster.deepseek-operator.io/loopback-address"
