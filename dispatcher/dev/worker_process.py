"""Start and stop a ``celery -A dispatcher worker`` child process (the demo and tests use it)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def die_with_parent() -> None:
    """Ask Linux to stop the child when the process that started it dies (no orphans)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def worker_command(
    *, concurrency: int = 2, pool: str = "prefork", hostname: str = "dispatcher@%h"
) -> list[str]:
    # No --queues: the worker consumes every queue of its own configuration (task_queues).
    return [
        sys.executable, "-m", "celery", "-A", "dispatcher", "worker",
        "--pool", pool,
        "--concurrency", str(concurrency),
        "--hostname", hostname,
        "--loglevel", "INFO",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip


@contextmanager
def running_worker(
    *,
    concurrency: int = 2,
    pool: str = "prefork",
    log_file: Path | None = None,
    environment: Mapping[str, str] | None = None,
    hostname: str = "dispatcher@%h",
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker for the duration of the block; stopped warmly (SIGTERM), then killed if stuck.

    ``environment`` replaces this process's environment for the worker when given.
    """
    env = dict(os.environ if environment is None else environment)
    output = log_file.open("ab") if log_file else subprocess.DEVNULL
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        worker_command(concurrency=concurrency, pool=pool, hostname=hostname),
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, before exec
    )
    try:
        yield process
    finally:
        stop_worker(process)
        if log_file and output is not subprocess.DEVNULL:
            output.close()  # type: ignore[union-attr]


def stop_worker(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_beat(
    *,
    schedule_file: Path,
    log_file: Path | None = None,
    environment: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``celery -A dispatcher beat`` for the duration of the block."""
    env = dict(os.environ if environment is None else environment)
    output = log_file.open("ab") if log_file else subprocess.DEVNULL
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "celery", "-A", "dispatcher", "beat", "--loglevel", "INFO",
         "--schedule", str(schedule_file)],
        env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, before exec
    )  # fmt: skip
    try:
        yield process
    finally:
        stop_worker(process)
        if log_file and output is not subprocess.DEVNULL:
            output.close()  # type: ignore[union-attr]
