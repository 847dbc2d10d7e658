"""``streams demo``: generated traffic through every flow, and a view of what flows.

``traffic`` stands in for the outside world, ``view`` shows what the worker did (live on a
terminal), ``summary`` turns a run into numbers (p50 / p99 beyond the debounce rule, as the
benchmarks measure it), ``run`` ties them together.
"""
