"""Recorded webhook bodies, replayed through the real path: in-process or over signed HTTP."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import requests
from redis import Redis
from rq import SimpleWorker

from cloudapi.body import is_json
from cloudapi.signature import SIGNATURE_HEADER, sign
from workers import inbox
from workers.reminders import REMINDER_QUEUE
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
            lines = [(number, line) for number, line in enumerate(path.read_bytes().splitlines(), start=1) if line.strip()]
            if not lines:
                raise ConfigError(f"{path}: no body to replay in this file")
            for number, line in lines:
                yield Recording(f"{path}:{number}", line)
        elif path.suffix == ".json":
            body = path.read_bytes()
            if not body.strip():
                raise ConfigError(f"{path}: no body to replay in this file")
            yield Recording(str(path), body)
        else:
            raise ConfigError(f"{path}: expected a .json body, a .jsonl recording or a folder")


def hand_off_all(redis: Redis, recordings: Iterable[Recording]) -> list[str]:
    """Hand bodies to the inbox exactly as the webhook does (one that is not JSON is kept as a
    dead letter); returns where those that are not JSON came from."""
    not_json = []
    hand_off = inbox.HandOff(redis)
    for recording in recordings:
        valid_json = is_json(recording.body)
        hand_off(recording.body, valid_json=valid_json)
        if not valid_json:
            not_json.append(recording.source)
    return not_json


def process_until_drained(redis: Redis, timeout_s: float = 600, deliver: bool = True) -> None:
    """Run the queue's jobs in this process until the inbox is empty (other workers may help),
    reminder deliveries too unless `deliver` is False (they then wait for a reminders worker).

    A drain job that fails stops the wait with its error instead of retrying until the timeout.
    """
    failures: list[str] = []

    def remember_failure(job, exc_type, exc_value, traceback) -> bool:
        failures.append(f"{exc_type.__name__}: {str(exc_value).splitlines()[0] if str(exc_value) else ''}")
        return True  # and let RQ record it as usual

    deadline = time.monotonic() + timeout_s
    while True:
        inbox.request_drain_if_backlog(redis)
        worker = SimpleWorker([inbox.INGEST_QUEUE, *([REMINDER_QUEUE] if deliver else [])], connection=redis,
                              exception_handlers=[remember_failure])
        worker.work(burst=True, logging_level="WARNING")
        if inbox.backlog(redis) == 0:
            return
        if failures:
            raise ConfigError(f"a drain job failed, {inbox.backlog(redis)} bodies wait in the inbox: {failures[-1]}")
        if time.monotonic() > deadline:
            raise ConfigError(f"the inbox still holds {inbox.backlog(redis)} bodies after {timeout_s:.0f}s")
        time.sleep(0.2)


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
