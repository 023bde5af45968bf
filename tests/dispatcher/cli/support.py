"""Running the ``dispatcher`` command as a new user does: a child process, embedded settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def embedded_environment(data_dir: Path) -> dict[str, str]:
    """No ``DISPATCHER_`` URL set: the SQLite default, with its files under ``data_dir``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DISPATCHER_")}
    env["DISPATCHER_DATA_DIR"] = str(data_dir)
    return env


#: This checkout, so a child started in another directory imports this code.
ROOT = Path(__file__).resolve().parents[3]


def run_cli(
    env: dict[str, str], *arguments: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", *arguments],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
