"""The container stack: docker-compose.yml, the Dockerfile and .env.example.

Compose itself validates the file (``docker-compose config``); the parsed file is held to the
design (services, health checks, restart policies, start order, configuration by environment
only); and every command the stack runs is run here for real against PostgreSQL and Redis.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet

from dispatcher.dev.worker_process import stop_worker
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
BIN = Path(sys.executable).parent

SERVICES = {"postgres", "redis", "migrate", "api", "worker", "beat", "flower"}
DISPATCHER_SERVICES = {"migrate", "api", "worker", "beat", "flower"}
# Every command the stack runs; the tests at the end of this module run each of them.
SERVICE_COMMANDS = {
    "migrate": ["dispatcher", "db", "upgrade"],
    "api": ["dispatcher", "api", "--host", "0.0.0.0", "--port", "3000", "--workers", "2"],
    "worker": ["celery", "-A", "dispatcher", "worker", "--loglevel", "INFO"],
    "beat": ["celery", "-A", "dispatcher", "beat", "--loglevel", "INFO"],
    "flower": ["celery", "-A", "dispatcher", "flower", "--port=5555"],
}
WORKER_HEALTHCHECK = "celery -A dispatcher inspect ping -d celery@$$HOSTNAME -t 10"
API_HEALTHCHECK = (
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=5)"
)
REQUIRED_VARIABLES = ("POSTGRES_PASSWORD", "DISPATCHER_ENCRYPTION_KEYS")
QUEUE_VARIABLES = (
    "DISPATCHER_ACTION_QUEUE",
    "DISPATCHER_DELIVERY_QUEUE",
    "DISPATCHER_CRITICAL_QUEUE",
)


def missing_tool(message: str) -> None:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message}; under CI a missing tool is a failure", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    parsed = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(parsed, dict)
    return parsed


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def as_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


# --- compose's own validation ---------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        missing_tool("docker-compose is not installed (Debian: apt-get install docker-compose)")
    assert found is not None
    return found


def compose_config(binary: str, env_file: Path, *options: str) -> subprocess.CompletedProcess[str]:
    # Only the env file feeds the interpolation: none of this process's DISPATCHER_ variables.
    return subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", *options],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent)},
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def write_env(path: Path, **values: str) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


def test_compose_accepts_the_file_with_the_secrets_set(docker_compose: str, tmp_path: Path) -> None:
    env_file = write_env(
        tmp_path / "dummy.env",
        POSTGRES_PASSWORD="dummy0password",
        DISPATCHER_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    assert compose_config(docker_compose, env_file, "-q").returncode == 0

    resolved = compose_config(docker_compose, env_file)
    assert resolved.returncode == 0, resolved.stderr
    worker = yaml.safe_load(resolved.stdout)["services"]["worker"]["environment"]
    assert worker["DISPATCHER_DATABASE_URL"] == (
        "postgresql://dispatcher:dummy0password@postgres:5432/dispatcher"
    )
    assert worker["DISPATCHER_BROKER_URL"] == "redis://redis:6379/0"
    assert worker["DISPATCHER_ENCRYPTION_KEYS"] == env_file.read_text().split("KEYS=")[1].strip()


def test_compose_accepts_the_example_env_file(docker_compose: str, tmp_path: Path) -> None:
    copy = tmp_path / "example.env"
    shutil.copy(ENV_EXAMPLE, copy)
    done = compose_config(docker_compose, copy, "-q")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("absent", REQUIRED_VARIABLES)
def test_compose_refuses_to_run_without_a_secret(
    docker_compose: str, tmp_path: Path, absent: str
) -> None:
    values = {"POSTGRES_PASSWORD": "dummy", "DISPATCHER_ENCRYPTION_KEYS": "dummy"}
    del values[absent]
    done = compose_config(docker_compose, write_env(tmp_path / "partial.env", **values), "-q")

    assert done.returncode != 0
    assert f"set {absent} in .env" in done.stderr


# --- the parsed file held to the design -----------------------------------------------------


def test_the_stack_has_the_designed_services_and_images(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == SERVICES
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name in DISPATCHER_SERVICES:
        assert services[name]["build"] == ".", name
        assert services[name]["image"] == services["worker"]["image"], name


def test_health_checks(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]["healthcheck"]["test"]
    assert postgres[0] == "CMD-SHELL"
    assert postgres[1].startswith("pg_isready ")
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["worker"]["healthcheck"]["test"] == ["CMD-SHELL", WORKER_HEALTHCHECK]
    assert services["api"]["healthcheck"]["test"] == ["CMD", "python", "-c", API_HEALTHCHECK]
    for name in ("postgres", "redis", "api", "worker"):
        check = services[name]["healthcheck"]
        assert {"interval", "timeout", "retries"} <= set(check), name


def test_restart_policies(services: dict[str, dict[str, Any]]) -> None:
    policies = {name: service.get("restart") for name, service in services.items()}
    assert policies == {
        "postgres": "unless-stopped",
        "redis": "unless-stopped",
        "migrate": "no",
        "api": "unless-stopped",
        "worker": "unless-stopped",
        "beat": "unless-stopped",
        "flower": "unless-stopped",
    }


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    order = {
        name: {dep: spec["condition"] for dep, spec in service.get("depends_on", {}).items()}
        for name, service in services.items()
    }
    assert order == {
        "postgres": {},
        "redis": {},
        "migrate": {"postgres": "service_healthy"},
        "api": {"migrate": "service_completed_successfully", "redis": "service_healthy"},
        "worker": {"migrate": "service_completed_successfully", "redis": "service_healthy"},
        "beat": {"migrate": "service_completed_successfully", "redis": "service_healthy"},
        "flower": {"redis": "service_healthy"},
    }


def test_every_command_is_one_this_module_runs(services: dict[str, dict[str, Any]]) -> None:
    commands = {name: as_argv(services[name]["command"]) for name in DISPATCHER_SERVICES}
    assert commands == SERVICE_COMMANDS


def test_dispatcher_services_are_configured_by_environment_only(
    services: dict[str, dict[str, Any]],
) -> None:
    password = r"\$\{POSTGRES_PASSWORD:\?[^}]+\}"
    for name in DISPATCHER_SERVICES:
        service = services[name]
        assert not {"env_file", "volumes", "configs", "secrets"} & set(service), name
        environment = service["environment"]
        assert all(key.startswith("DISPATCHER_") for key in environment), name
        assert environment["DISPATCHER_BROKER_URL"] == "redis://redis:6379/0", name
        if name != "flower":
            assert re.fullmatch(
                rf"postgresql://dispatcher:{password}@postgres:5432/dispatcher",
                environment["DISPATCHER_DATABASE_URL"],
            ), name
    assert re.fullmatch(password, services["postgres"]["environment"]["POSTGRES_PASSWORD"])


def test_only_the_worker_and_the_api_hold_the_encryption_keys(
    services: dict[str, dict[str, Any]],
) -> None:
    """The worker decrypts credentials to send, the API to verify provider callbacks; beat,
    Flower and the migration never see them."""
    holders = {
        name
        for name, service in services.items()
        if "DISPATCHER_ENCRYPTION_KEYS" in service.get("environment", {})
    }
    assert holders == {"worker", "api"}
    for holder in holders:
        value = services[holder]["environment"]["DISPATCHER_ENCRYPTION_KEYS"]
        assert re.fullmatch(
            r"\$\{DISPATCHER_ENCRYPTION_KEYS:\?[^}]*dispatcher keys generate[^}]*\}", value
        )


def test_only_flower_and_the_api_are_published_and_on_loopback(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert published == {"flower": ["127.0.0.1:5555:5555"], "api": ["127.0.0.1:3000:3000"]}


def test_postgres_keeps_its_data_on_a_named_volume(compose: dict[str, Any]) -> None:
    assert "postgres-data:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    assert "postgres-data" in compose["volumes"]


# --- .env.example and Dockerfile -------------------------------------------------------------


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_the_example_env_names_every_variable_and_holds_no_secret() -> None:
    referenced = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))
    example = env_example()

    assert referenced == set(REQUIRED_VARIABLES)
    assert set(example) == referenced
    with pytest.raises(ValueError, match="Fernet key"):
        Fernet(example["DISPATCHER_ENCRYPTION_KEYS"])
    lines = ENV_EXAMPLE.read_text().splitlines()
    key_line = next(i for i, line in enumerate(lines) if line.startswith("DISPATCHER_ENCRYPTION"))
    comment = []
    for line in reversed(lines[:key_line]):
        if not line.startswith("#"):
            break
        comment.append(line)
    assert "dispatcher keys generate" in " ".join(comment)
    assert ".env" in ROOT.joinpath(".gitignore").read_text().splitlines()


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerignore_keeps(name: str) -> bool:
    """Whether the build context keeps the top-level entry NAME (the last match decides)."""
    kept = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        if "/" not in pattern and fnmatch.fnmatchcase(name, pattern):
            kept = negated
    return kept


def test_the_image_runs_as_a_non_root_user_from_the_projects_own_files() -> None:
    instructions = dockerfile_instructions()
    images = [rest.split()[0] for keyword, rest in instructions if keyword == "FROM"]
    assert images and set(images) == {"python:3.11-slim"}
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    installs = [
        rest for keyword, rest in instructions if keyword == "RUN" and "pip install" in rest
    ]
    assert len(installs) == 1
    assert re.search(r"pip install -c constraints\.txt \"?\.(\[[\w,]+\])?\"?$", installs[0])
    (cmd,) = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert json.loads(cmd) == SERVICE_COMMANDS["worker"]

    copied = [
        source
        for keyword, rest in instructions
        if keyword == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    ]
    assert {"pyproject.toml", "constraints.txt", "README.md", "dispatcher", "models"} <= set(copied)
    for source in copied:
        assert (ROOT / source).exists(), source
        assert dockerignore_keeps(source), f"{source} is copied but .dockerignore drops it"
    for private in (".env", ".git", ".venv", "var", "tests"):
        assert not dockerignore_keeps(private), private


# --- every command of the stack, run for real --------------------------------------------------


def executable(argv: list[str]) -> list[str]:
    program = BIN / argv[0]
    assert program.exists(), f"{argv[0]} is not installed next to {sys.executable}"
    return [str(program), *argv[1:]]


@pytest.fixture
def started() -> Iterator[list[tuple[subprocess.Popen[bytes], Path]]]:
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []
    yield processes
    for process, _ in processes:
        stop_worker(process, timeout=20)


@pytest.fixture
def private_queues(redis_url: str) -> Iterator[dict[str, str]]:
    """This process's environment with queues of one test only, dropped afterwards."""
    import redis

    suffix = f"ops-{uuid.uuid4().hex[:8]}"
    environment = {**os.environ, **{name: f"{name.lower()}-{suffix}" for name in QUEUE_VARIABLES}}
    yield environment
    client = redis.Redis.from_url(redis_url)
    leftovers = list(client.scan_iter(match=f"*{suffix}*"))
    if leftovers:
        client.delete(*leftovers)
    client.close()


def start(
    processes: list[tuple[subprocess.Popen[bytes], Path]],
    argv: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    log = cwd / f"{Path(argv[0]).name}-{len(processes)}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            executable(argv), cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    processes.append((process, log))
    return process


def wait_for(condition: Any, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    pytest.fail(f"{what} within {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def test_the_migrate_command_upgrades_the_database(postgres_url: str) -> None:
    done = subprocess.run(
        executable(SERVICE_COMMANDS["migrate"]),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "database at revision head"


@pytest.mark.worker
def test_the_worker_command_answers_its_healthcheck(
    private_queues: dict[str, str],
    tmp_path: Path,
    started: list[tuple[subprocess.Popen[bytes], Path]],
) -> None:
    from dispatcher.celery_app import app

    node = f"ops-{uuid.uuid4().hex[:8]}"
    argv = [*SERVICE_COMMANDS["worker"], "--hostname", f"celery@{node}", "--concurrency", "1"]
    process = start(started, argv, tmp_path, private_queues)
    log = started[-1][1]
    wait_for(
        lambda: process.poll() is not None or app.control.ping([f"celery@{node}"], timeout=0.5),
        "the worker did not answer a ping",
        log,
    )
    assert process.poll() is None, log.read_text()

    def healthcheck(hostname: str) -> subprocess.CompletedProcess[str]:
        # What compose runs: the $$ escape undone, the shell expands HOSTNAME.
        return subprocess.run(
            ["/bin/sh", "-c", WORKER_HEALTHCHECK.replace("$$", "$")],
            env={**os.environ, "HOSTNAME": hostname, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    healthy = healthcheck(node)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "pong" in healthy.stdout
    assert healthcheck(f"gone-{node}").returncode != 0


def test_the_api_command_serves_and_answers_its_healthcheck(
    postgres_url: str,
    redis_url: str,
    tmp_path: Path,
    started: list[tuple[subprocess.Popen[bytes], Path]],
) -> None:
    port = free_port()
    argv = [*SERVICE_COMMANDS["api"]]
    assert argv[argv.index("--port") + 1] == "3000"
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    process = start(started, argv, tmp_path)
    log = started[-1][1]
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(lambda: process.poll() is not None or answers(), "the API did not get ready", log)
    assert process.poll() is None, log.read_text()
    check = subprocess.run(
        [sys.executable, "-c", API_HEALTHCHECK.replace(":3000/", f":{port}/")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


def test_the_beat_command_starts_and_publishes_its_schedule(
    private_queues: dict[str, str],
    tmp_path: Path,
    started: list[tuple[subprocess.Popen[bytes], Path]],
    redis_url: str,
) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    process = start(started, SERVICE_COMMANDS["beat"], tmp_path, private_queues)
    log = started[-1][1]
    try:
        wait_for(
            lambda: any(client.llen(private_queues[name]) for name in QUEUE_VARIABLES),
            "beat published nothing",
            log,
        )
    finally:
        client.close()
    # The working directory must be writable (the image's WORKDIR is).
    assert list(tmp_path.glob("celerybeat-schedule*"))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


def test_the_flower_command_serves_the_dashboard(
    redis_url: str,
    tmp_path: Path,
    started: list[tuple[subprocess.Popen[bytes], Path]],
) -> None:
    if importlib.util.find_spec("flower") is None:
        missing_tool("flower is not installed (the image installs the project's flower extra)")
    port = free_port()
    argv = [*SERVICE_COMMANDS["flower"][:-1], f"--port={port}", "--address=127.0.0.1"]
    assert SERVICE_COMMANDS["flower"][-1].startswith("--port=")
    process = start(started, argv, tmp_path)
    log = started[-1][1]

    def answers() -> bool:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2)
        except httpx.TransportError:
            return False
        return response.status_code == 200 and response.text == "OK"

    wait_for(answers, "flower did not answer /healthcheck", log)
