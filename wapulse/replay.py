"""Recorded webhook bodies, replayed through the real path: in-process or over signed HTTP."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import requests
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job

from cloudapi.signature import SIGNATURE_HEADER, sign
from workers import inbox
from workers.settings import ConfigError

RECORDING_SUFFIXES = (".json", ".jsonl")


@dataclass(frozen=True)
class Recording:
    """One body and where it came from (file, and line for .jsonl), for error messages."""

    source: str
    body: bytes


def read_recordings(paths: Iterable[str]) -> Iterator[Recording]:
    """Bodies from `.json` files (the whole file), `.jsonl` files (one body a line) and folders
    of them (in name order), bytes untouched."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in RECORDING_SUFFIXES and p.is_file())
            if not files:
                raise ConfigError(f"{path}: no .json or .jsonl recordings in this folder")
            yield from read_recordings(str(p) for p in files)
        elif not path.is_file():
            raise ConfigError(f"{path}: no such file or folder")
        elif path.suffix == ".jsonl":
            for number, line in enumerate(path.read_bytes().splitlines(), start=1):
                if line.strip():
                    yield Recording(f"{path}:{number}", line)
        elif path.suffix == ".json":
            yield Recording(str(path), path.read_bytes())
        else:
            raise ConfigError(f"{path}: expected a .json body, a .jsonl recording or a folder")


def hand_off_all(redis: Redis, recordings: Iterable[Recording]) -> int:
    """Hand bodies to the inbox exactly as the webhook does; returns how many."""
    count = 0
    for recording in recordings:
        inbox.hand_off(redis, recording.body)
        count += 1
    return count


def process_until_drained(redis: Redis, timeout_s: float = 600) -> None:
    """Run the queue's jobs in this process until the inbox is empty (other workers may help).

    A drain job that fails stops the wait with its error instead of retrying until the timeout.
    """
    queue = Queue(inbox.INGEST_QUEUE, connection=redis)
    failed_before = _failed_job_ids(queue)
    deadline = time.monotonic() + timeout_s
    while True:
        inbox.request_drain_if_backlog(redis)
        SimpleWorker([queue], connection=redis).work(burst=True, logging_level="WARNING")
        if inbox.backlog(redis) == 0:
            return
        for job_id in _failed_job_ids(queue) - failed_before:
            job = Job.fetch(job_id, connection=redis)
            reason = (job.exc_info or "").strip().splitlines()[-1:] or ["unknown error"]
            raise ConfigError(f"a drain job failed, {inbox.backlog(redis)} bodies wait in the inbox: {reason[0]}")
        if time.monotonic() > deadline:
            raise ConfigError(f"the inbox still holds {inbox.backlog(redis)} bodies after {timeout_s:.0f}s")
        time.sleep(0.2)


def _failed_job_ids(queue: Queue) -> set[str]:
    """Drain jobs that failed, for good or until a retry: both registries hold the error."""
    return set(queue.failed_job_registry.get_job_ids()) | set(queue.scheduled_job_registry.get_job_ids())


def post_all(url: str, secret: str, recordings: Iterable[Recording], timeout_s: float = 30) -> int:
    """POST each body signed as Meta signs it; stops at the first non-2xx answer."""
    count = 0
    with requests.Session() as session:
        for recording in recordings:
            try:
                response = session.post(
                    url,
                    data=recording.body,
                    headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, recording.body)},
                    timeout=timeout_s,
                )
            except requests.RequestException as error:
                raise ConfigError(f"{recording.source}: could not POST to {url}: {type(error).__name__}") from None
            if not 200 <= response.status_code < 300:
                raise ConfigError(
                    f"{recording.source}: {url} answered {response.status_code} {response.text.strip()[:200]}"
                )
            count += 1
    return count
