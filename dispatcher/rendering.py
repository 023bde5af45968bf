"""Templates are tenant input: rendered in Jinja2's sandbox, with a deadline and size limits.

The sandbox refuses unsafe attribute access (``__class__``, ``mro``, format-string tricks); on top
of it a render stops when it passes its deadline or output limit, and ``range`` draws on a small
per-render budget so nested loops cannot spin for minutes without producing output.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2 import TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment

#: ``range`` items one render may produce in total.
RANGE_BUDGET = 10_000


class RenderError(ValueError):
    """A template could not be rendered (syntax, sandbox violation, deadline, size)."""


class _Budget:
    def __init__(self, deadline: float, max_length: int) -> None:
        self.deadline = deadline
        self.max_length = max_length
        self.range_left = RANGE_BUDGET

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderError("template render took too long")


class _DeadlineSandbox(SandboxedEnvironment):
    """Checks the current render's deadline on every call and attribute access."""

    budget: _Budget | None = None

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if self.budget is not None:
            self.budget.tick()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if self.budget is not None:
            self.budget.tick()
        return super().getattr(obj, attribute)


class TemplateRenderer:
    """One sandbox per process; not shared between threads."""

    def __init__(self, *, timeout: float = 1.0, max_length: int = 200_000) -> None:
        self.timeout = timeout
        self.max_length = max_length
        self.environment = _DeadlineSandbox(autoescape=False, keep_trailing_newline=True)
        self.environment.globals["range"] = self._range
        self._cache: dict[str, Any] = {}

    def _range(self, *args: int) -> Iterator[int]:
        budget = self.environment.budget
        for number in range(*args):
            if budget is not None:
                budget.range_left -= 1
                if budget.range_left < 0:
                    raise RenderError(f"template loops over more than {RANGE_BUDGET} items")
                budget.tick()
            yield number

    def render(self, source: str, context: Mapping[str, Any]) -> str:
        template = self._cache.get(source)
        try:
            if template is None:
                template = self.environment.from_string(source)
                if len(self._cache) < 10_000:
                    self._cache[source] = template
            budget = _Budget(time.monotonic() + self.timeout, self.max_length)
            self.environment.budget = budget
            try:
                return self._collect(template.generate(dict(context)), budget)
            finally:
                self.environment.budget = None
        except RenderError:
            raise
        except TemplateError as exc:
            raise RenderError(f"{type(exc).__name__}: {exc.message or exc}") from None
        except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as exc:
            raise RenderError(f"{type(exc).__name__} while rendering") from None

    @staticmethod
    def _collect(chunks: Iterable[str], budget: _Budget) -> str:
        parts: list[str] = []
        length = 0
        for chunk in chunks:
            budget.tick()
            length += len(chunk)
            if length > budget.max_length:
                raise RenderError(f"rendered text longer than {budget.max_length} characters")
            parts.append(chunk)
        return "".join(parts)

    def render_fields(
        self, templates: Mapping[str, str], context: Mapping[str, Any]
    ) -> dict[str, str]:
        return {name: self.render(source, context) for name, source in templates.items()}


def required_payload_keys(sources: Iterable[str]) -> set[str]:
    """Top-level ``payload`` keys the templates use without a ``default`` filter."""
    environment = SandboxedEnvironment()
    required: set[str] = set()
    for source in sources:
        tree = environment.parse(source)
        defaulted = {
            id(node.node)
            for node in tree.find_all(nodes.Filter)
            if node.name in {"default", "d"} and node.node is not None
        }
        for found in tree.find_all((nodes.Getattr, nodes.Getitem)):
            if id(found) in defaulted:
                continue
            if isinstance(found, nodes.Getattr) and _is_payload(found.node):
                required.add(found.attr)
            elif (
                isinstance(found, nodes.Getitem)
                and _is_payload(found.node)
                and isinstance(found.arg, nodes.Const)
                and isinstance(found.arg.value, str)
            ):
                required.add(found.arg.value)
    # ``{% if payload.x is defined %}`` guards are treated as optional too.
    for source in sources:
        for test in environment.parse(source).find_all(nodes.Test):
            node = test.node
            if (
                test.name == "defined"
                and isinstance(node, nodes.Getattr)
                and isinstance(node.node, nodes.Name)
                and node.node.name == "payload"
            ):
                required.discard(node.attr)
    return required


def _is_payload(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "payload"
