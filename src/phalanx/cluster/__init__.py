"""Distributed mode's pure coordination: who is alive, who runs what, when the link is lost.

Everything here is pure: no I/O, no asyncio, no clocks. Functions that
depend on time take ``now`` (seconds, monotonic). The master and worker
drivers call these modules and act on what they return.
"""
