"""Pure scoring core: no I/O."""
