"""Start and stop a ``dispatcher api`` child process (the demo and tests use it)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from dispatcher.dev.worker_process import die_with_parent, stop_worker


def api_command(*, port: int, host: str = "127.0.0.1") -> list[str]:
    """The argv of ``dispatcher api`` on ``host:port`` with this interpreter."""
    return [sys.executable, "-m", "dispatcher.cli", "api", "--host", host, "--port", str(port)]


@contextmanager
def running_api(
    *,
    port: int,
    host: str = "127.0.0.1",
    log_file: Path | None = None,
    environment: Mapping[str, str] | None = None,
    start_timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``dispatcher api`` on ``host:port`` for the block, once ``/healthz`` answers."""
    output = log_file.open("ab") if log_file else subprocess.DEVNULL
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        api_command(port=port, host=host),
        env=None if environment is None else dict(environment),
        stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, before exec
    )  # fmt: skip
    try:
        _wait_until_up(process, f"http://{host}:{port}/healthz", start_timeout)
        yield process
    finally:
        stop_worker(process)
        if log_file and output is not subprocess.DEVNULL:
            output.close()  # type: ignore[union-attr]


def _wait_until_up(process: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dispatcher api exited at start-up with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"dispatcher api did not answer {url} within {timeout:g} s")
