"""Test-session setup shared by every test directory."""
# mmengine imports yapf, whose first import writes a grammar cache (~/.cache/YAPF) without an atomic rename. pytest
# loads this file in the process that starts the xdist workers, so importing mmengine here writes that cache before
# two workers can race on it (a worker reading it half-written fails collection with "EOFError: Ran out of input").
import mmengine.config  # noqa: F401
