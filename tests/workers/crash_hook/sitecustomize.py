"""Loaded by the worker subprocesses of tests/workers/test_crash.py (through PYTHONPATH): it
SIGKILLs the process at the moment WAPULSE_TEST_KILL_AT names, so a test can prove that a worker
dying there loses nothing and counts nothing twice. Never on the path of a real deployment."""

import os
import signal

_moment = os.environ.get("WAPULSE_TEST_KILL_AT")


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


if _moment == "before_commit":
    import store.batch

    _write_batch = store.batch.write_batch

    def _write_then_die(*args):
        _write_batch(*args)  # every row written, the transaction still open
        _die()

    store.batch.write_batch = _write_then_die
elif _moment == "before_ack":
    import workers.ingest

    _process = workers.ingest.process_entries

    def _commit_then_die(*args):
        _process(*args)  # committed, not yet acknowledged in Redis
        _die()

    workers.ingest.process_entries = _commit_then_die
