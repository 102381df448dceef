"""Lightweight Mobile Router agent.

Runs on a multihomed Mobile Router: it watches its egress interfaces, registers
one care-of address per interface with the Home Agent using Binding Updates
with Binding Identifiers (RFC 5648) and the Mobile Router flag (RFC 3963), and
maintains the bidirectional tunnels that carry its mobile network's traffic.
"""
