"""SDN Home Agent for NEMO with multiple care-of addresses.

The applications in this package run inside os-ken (or Ryu on Python 3.9) and
act as the Home Agent of RFC 3963/RFC 5648: they process Binding Updates from
Mobile Routers, keep the binding cache of care-of addresses and mobile network
prefixes, and program Open vSwitch with OpenFlow rules that tunnel the home
traffic to the Mobile Router over the chosen care-of address(es) (RFC 4908).
"""
