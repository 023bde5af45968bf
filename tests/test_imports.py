"""Every module imports on its own, in a fresh interpreter: no import cycle is hidden by the
order in which ``dispatcher/__init__.py`` happens to import things."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dispatcher", "providers", "models")


def all_modules() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if ".migrations." in info.name or info.name.endswith("__main__"):
                continue
            names.append(info.name)
    return sorted(names)


#: Run in one fresh interpreter: third-party libraries are imported once, then each of our
#: modules is imported in a forked child that has imported nothing of ours (a fresh interpreter
#: per module costs about 1.5 s each, mostly Celery and SQLAlchemy).
CHILD_IMPORTS = """
import os, sys, traceback
import celery, kombu, sqlalchemy, sqlalchemy.orm, pydantic, httpx, jinja2, click, redis, alembic
assert not [m for m in sys.modules if m.split(".")[0] in {"dispatcher", "providers", "models"}]
running = {}
def reap():
    pid, status = os.wait()
    print(running.pop(pid), os.waitstatus_to_exitcode(status), flush=True)
for module in sys.argv[1:]:
    if len(running) >= 4:
        reap()
    pid = os.fork()
    if pid == 0:
        try:
            __import__(module)
        except BaseException:
            sys.stderr.write(f"FAILED {module}\\n{traceback.format_exc()}\\n")
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)
    running[pid] = module
while running:
    reap()
"""


def import_each_alone(modules: list[str]) -> dict[str, str]:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD_IMPORTS, *modules],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=True,
    )
    codes = dict(line.rsplit(" ", 1) for line in completed.stdout.splitlines())
    assert set(codes) == set(modules), completed.stderr[-3000:]
    errors = {m: "" for m, code in codes.items() if code != "0"}
    for block in completed.stderr.split("FAILED ")[1:]:
        module, _, trace = block.partition("\n")
        errors[module] = trace[-2000:]
    return errors


def test_the_module_list_covers_the_packages() -> None:
    modules = all_modules()
    assert "dispatcher.notifications.events" in modules
    assert "dispatcher.sending.store" in modules
    assert len(modules) > 100


def test_every_module_imports_on_its_own() -> None:
    failures = import_each_alone(all_modules())
    if failures:
        pytest.fail("\n\n".join(f"{module}:\n{error}" for module, error in failures.items()))


def test_a_module_that_cannot_import_is_reported() -> None:
    failures = import_each_alone(["dispatcher.validation", "dispatcher.no_such_module"])
    assert list(failures) == ["dispatcher.no_such_module"]
    assert "ModuleNotFoundError" in failures["dispatcher.no_such_module"]


def runtime_import_graph(package: str) -> dict[str, set[str]]:
    """Who imports whom when the code runs: importing ``a.b.c`` also runs ``a/b/__init__``, so
    each import is an edge to the module's packages too (all but the top package, which every
    entry point imports first)."""
    import grimp

    graph = grimp.build_graph(package, exclude_type_checking_imports=True)
    edges: dict[str, set[str]] = {module: set() for module in graph.modules}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            parts = imported.split(".")
            for depth in range(2, len(parts) + 1):
                target = ".".join(parts[:depth])
                if target != module and not module.startswith(target + "."):
                    edges[module].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in edges:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    assert cycles(runtime_import_graph(package)) == []


def test_the_cycle_finder_finds_a_cycle_through_a_package_init() -> None:
    # The shape of the cycle the renovation broke: events -> actions (package init) -> schedules
    # -> scheduling -> triggers -> events.
    edges = {
        "d.events": {"d.actions", "d.actions.fields"},
        "d.actions": {"d.actions.schedules"},
        "d.actions.fields": set(),
        "d.actions.schedules": {"d.scheduling"},
        "d.scheduling": {"d.triggers"},
        "d.triggers": {"d.events"},
    }
    assert cycles(edges) == [
        ["d.actions", "d.actions.schedules", "d.events", "d.scheduling", "d.triggers"]
    ]
