"""Composition root: the `wapulse` command and the local services it starts."""
