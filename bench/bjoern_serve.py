"""Serve a WSGI app factory with bjoern in several processes, as granian's `--workers` does:
bjoern has no multi-process mode of its own. Each forked process builds its own app (its own
Redis connections) and listens on the shared port with SO_REUSEPORT.

    python -m bench.bjoern_serve module:factory HOST PORT WORKERS
"""

from __future__ import annotations

import importlib
import os
import sys

import bjoern


def serve(target: str, host: str, port: int) -> None:
    module, factory = target.split(":")
    app = getattr(importlib.import_module(module), factory)()
    bjoern.listen(app, host, port, reuse_port=True)
    bjoern.run()


def main() -> None:
    target, host, port, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    for _ in range(workers):
        if os.fork() == 0:
            serve(target, host, port)
            os._exit(0)
    for _ in range(workers):
        os.wait()


if __name__ == "__main__":
    main()
