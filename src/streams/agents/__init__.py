"""Thin Faust agents and timers: decode, call the domain, encode, send."""
