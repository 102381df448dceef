"""Network-namespace lab for nemo-fabric.

Builds the RFC 4908 test topologies on one Linux host: network namespaces for
the Home Agent, Mobile Router, access networks and correspondent nodes,
connected by veth pairs and an Open vSwitch bridge, for integration tests,
demos and benchmarks.
"""
