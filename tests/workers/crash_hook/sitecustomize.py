"""Loaded by the worker subprocesses of tests/workers/test_crash_and_concurrency.py (through PYTHONPATH): it
SIGKILLs the process at the moment WAPULSE_TEST_KILL_AT names, so a test can prove that a worker
dying there loses nothing and counts nothing twice. Never on the path of a real deployment."""

import os
import signal

_moment = os.environ.get("WAPULSE_TEST_KILL_AT")


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


if _moment == "between_fold_and_write":
    import workers.ingest

    _prepare = workers.ingest.prepare

    def _fold_then_die(*args):
        _prepare(*args)  # read and planned, nothing written
        _die()

    workers.ingest.prepare = _fold_then_die
elif _moment == "before_commit":
    import workers.ingest

    _commit = workers.ingest.commit

    def _write_then_die(*args):
        _commit(*args)  # every row written, the transaction still open
        _die()

    workers.ingest.commit = _write_then_die
elif _moment == "before_ack":
    import workers.ingest

    _process = workers.ingest.process_entries

    def _commit_then_die(*args, **options):
        _process(*args, **options)  # committed, not yet acknowledged in Redis
        _die()

    workers.ingest.process_entries = _commit_then_die
