"""Recorded webhook bodies, replayed through the real path: in this process through the worker's
own code, or over signed HTTP to a running server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import requests

from cloudapi.body import is_json
from cloudapi.signature import SIGNATURE_HEADER, sign
from workers.context import Context
from workers.ingest import DrainTotals, commit_here
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


def commit_all(context: Context, recordings: Iterable[Recording], batch_size: int) -> tuple[DrainTotals, list[str]]:
    """Commit bodies in this process (`workers.ingest.commit_here`). Returns the totals, and where
    the bodies that are not JSON (kept as dead letters) came from."""
    not_json: list[str] = []

    def bodies() -> Iterator[bytes]:  # read as they are committed, so a progress bar around `recordings` moves
        for recording in recordings:
            if not is_json(recording.body):
                not_json.append(recording.source)
            yield recording.body

    return commit_here(context, bodies(), batch_size), not_json


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
