"""Scale-out, simulated: worker processes against a PostgreSQL that answers from another machine.

A TCP proxy in front of the local PostgreSQL holds every chunk of bytes for half the round trip
in each direction (2 ms round trip by default, as a database across a data-centre network), and
1, 2, 4 and 8 worker processes (`wapulse worker --burst`) drain the same handed-off corpus
through it. The baseline is one process, measured in the same run; the ratio says how far more
workers (on more machines, in a real deployment) carry the load when each waits on the network.

    python -m bench.scale_out [--bodies 6000] [--customers 20000] [--round-trip-ms 2] [--processes 1,2,4,8]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.bodies import make_corpus
from bench.common import POSTGRES_URL, free_port, machine, postgres_available, print_table, scratch_database
from bench.workers import ours


def _serve_delayed(listen_port: int, target: tuple[str, int], one_way_s: float, ready) -> None:
    """The proxy's process: each direction of each connection forwards its chunks in order, each
    no sooner than `one_way_s` after it arrived."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def forward() -> None:
            while (item := await queue.get()) is not None:
                arrived, chunk = item
                if (wait := arrived + one_way_s - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()
            writer.close()

        sender = asyncio.create_task(forward())
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((time.monotonic(), chunk))
        except ConnectionError:
            pass
        queue.put_nowait(None)
        await sender

    async def connection(client_reader, client_writer) -> None:
        server_reader, server_writer = await asyncio.open_connection(*target)
        for writer in (client_writer, server_writer):
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer),
                             return_exceptions=True)

    async def main() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", listen_port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def through(url: str, port: int) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{port}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=6_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--round-trip-ms", type=float, default=2.0)
    parser.add_argument("--processes", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2, 4, 8])
    args = parser.parse_args()
    if not postgres_available():
        raise SystemExit("PostgreSQL not reachable: nothing to measure")
    corpus = make_corpus(args.bodies, customers=args.customers)
    print(f"machine: {machine()}")
    print(f"corpus: {args.bodies} bodies, {corpus.updates} updates about {args.customers:,} customers (seeded); "
          f"PostgreSQL {args.round_trip_ms} ms of round trip away")
    target = urlsplit(POSTGRES_URL)
    port, ready = free_port(), multiprocessing.Event()
    proxy = multiprocessing.Process(target=_serve_delayed, daemon=True, args=(
        port, (target.hostname or "127.0.0.1", target.port or 5432), args.round_trip_ms / 2000, ready))
    proxy.start()
    ready.wait(10)
    rows, baseline = [], None
    try:
        with tempfile.TemporaryDirectory() as folder:
            for processes in args.processes:
                with scratch_database("postgres", Path(folder)) as url:
                    rate, peak = ours(through(url, port), corpus.bodies, corpus.updates, processes)
                baseline = baseline or rate
                rows.append([processes, f"{rate:,.0f}", f"{rate / baseline:.2f}", f"{peak:.0f}"])
    finally:
        proxy.terminate()
    print_table(f"worker processes against PostgreSQL {args.round_trip_ms} ms away (events/s, first to last commit)",
                ["workers", "events/s", f"x {args.processes[0]} worker(s)", "peak RSS MiB"], rows)


if __name__ == "__main__":
    main()
