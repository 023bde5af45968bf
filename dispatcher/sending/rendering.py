"""Templates are tenant input: rendered in Jinja2's sandbox, with a deadline and size limits.

The sandbox refuses unsafe attribute access (``__class__``, ``mro``, format-string tricks) and,
being the immutable variant, any change to lists and dicts. On top of it:

* a render stops when it passes its deadline, its output limit, or its loop budget: every loop
  iteration, call, attribute access and output chunk checks the deadline, ``range`` draws on a
  small per-render budget, and all loops together on a larger one;
* operations that can make a huge value out of small ones are checked *before* they run, since
  one such operation can take seconds and gigabytes between two deadline checks: ``*``, ``**``,
  ``+``, ``%`` and ``~``, padding and replacing (``center``, ``indent``, ``replace``, ``join``,
  ``format``, ``wordwrap``, ``urlize``, ``str.ljust``, ``str.format``, ...) and ``lipsum``. They
  are never folded into constants at compile time, where no deadline applies;
* only data (text, numbers, lists, mappings) may be output: a function, class or other object
  is refused rather than shown by its repr.
"""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any

from jinja2 import Environment, TemplateError, TemplateSyntaxError, Undefined, nodes, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
from jinja2.utils import _PassArg, generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

#: ``range`` items one render may produce in total.
RANGE_BUDGET = 10_000
#: Iterations of all ``for`` loops of one render together.
LOOP_BUDGET = 100_000
#: Bits of an integer that template arithmetic may produce (about 20,000 decimal digits).
MAX_INT_BITS = 65_536
#: ``tojson(indent=...)`` wider than this is refused.
MAX_JSON_INDENT = 16
#: Brackets and blocks nested deeper than this are refused before parsing: Jinja's parser and
#: compiler recurse per level, and a few hundred levels exceed Python's recursion limit.
MAX_TEMPLATE_NESTING = 64
_OPENING = frozenset({"(", "[", "{"})
_CLOSING = frozenset({")", "]", "}"})
_BLOCKS = frozenset({"if", "for", "macro", "call", "filter", "block", "with", "autoescape"})

_LOOP_FILTER = "_dispatcher_loop"
_CONCAT_FILTER = "_dispatcher_concat"
#: Filters whose result is not text made from their input: they take inputs of any size.
_UNSIZED_FILTERS = frozenset(
    {
        "abs", "attr", "batch", "count", "d", "default", "dictsort", "first", "float",
        "groupby", "int", "items", "last", "length", "list", "map", "max", "min", "reject",
        "rejectattr", "reverse", "round", "select", "selectattr", "slice", "sort", "sum",
        "unique", _LOOP_FILTER, _CONCAT_FILTER,
    }
)  # fmt: skip
#: Filters whose output grows with the number of input items: a generator is listed first.
_MATERIALISED = frozenset({"join", "sum"})
_PRINTF = re.compile(
    r"%(?:\([^)]*\))?[#0 +-]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?"
    r"(?P<conversion>[diouxXeEfFgGcrsa%])"
)
_NUMBER = re.compile(r"\d+")
_DATA = (str, bytes, int, float, bool, type(None), Undefined)
_SEQUENCES = (str, bytes, list, tuple)


class RenderError(ValueError):
    """A template could not be rendered (syntax, sandbox violation, deadline, size)."""


def check_nesting(environment: Environment, source: str) -> None:
    """Refuse a template nested deeper than :data:`MAX_TEMPLATE_NESTING` (a syntax error with
    its line), from the token stream, which the lexer produces without recursion."""
    depth = 0
    after_block_begin = False
    for lineno, kind, value in environment.lex(source):
        if kind == "whitespace":
            continue
        if kind == "operator" and value in _OPENING:
            depth += 1
        elif kind == "operator" and value in _CLOSING:
            depth -= 1
        elif after_block_begin and kind == "name":
            if value in _BLOCKS:
                depth += 1
            elif value.startswith("end"):
                depth -= 1
        after_block_begin = kind == "block_begin"
        if depth > MAX_TEMPLATE_NESTING:
            raise TemplateSyntaxError(
                f"the template nests brackets or blocks deeper than {MAX_TEMPLATE_NESTING} levels",
                lineno,
            )


def compile_template(environment: Environment, source: str) -> nodes.Template:
    """Check, parse and compile a template the way a worker will (syntax errors name their
    line); the parsed tree is returned. A tree too deep for the compiler is a syntax error too."""
    check_nesting(environment, source)
    try:
        tree = environment.parse(source)
        environment.compile(tree)
    except RecursionError:
        raise TemplateSyntaxError("the template is nested too deeply", 1) from None
    return tree


class _Budget:
    def __init__(self, deadline: float, max_length: int) -> None:
        self.deadline = deadline
        self.max_length = max_length
        self.range_left = RANGE_BUDGET
        self.loops_left = LOOP_BUDGET

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderError("template render took too long")


def text_size(value: Any, limit: int) -> int:
    """An upper bound of ``len(str(value))``; counting stops once it passes ``limit``.

    Shared references count each time they appear: ``[s, s, s]`` prints ``s`` three times.
    """
    if isinstance(value, str):
        return len(value)
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 3
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            if total <= limit:
                for key, entry in item.items():
                    stack += (key, entry)
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend(item)
        else:
            total += 32
    return total


def _too_long(limit: int) -> RenderError:
    return RenderError(f"template would produce more than {limit} characters")


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise _too_long(limit)


def _check_width(value: Any, limit: int, what: str = "width") -> int:
    """A width or count argument (or the length of a text used as one), at most ``limit``."""
    width = len(value) if isinstance(value, str) else value if isinstance(value, int) else 0
    if width > limit:
        raise RenderError(f"{what} {width} is larger than {limit}")
    return width


def _largest(values: Iterable[Any], limit: int) -> int:
    return max((text_size(value, limit) for value in values), default=0)


def _printf_size(template: str, arguments: Any, limit: int) -> int:
    """Upper bound of ``template % arguments``; refuses ``*`` widths and huge ones."""
    conversions, widths = 0, 0
    for match in _PRINTF.finditer(template):
        if match["conversion"] == "%":
            continue
        conversions += 1
        for part in (match["width"], match["precision"]):
            if part == "*":
                raise RenderError("a '*' width in a format string is not allowed in templates")
            if part:
                widths += _check_width(int(part), limit)
    if isinstance(arguments, Mapping):
        values: Iterable[Any] = arguments.values()
    elif isinstance(arguments, tuple):
        values = arguments
    else:
        values = (arguments,)
    return len(template) + widths + conversions * _largest(values, limit)


def _format_size(template: str, values: list[Any], limit: int) -> int:
    """Upper bound of ``template.format(...)``; nested replacement fields are refused."""
    fields, widths = 0, 0
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return len(template)  # the call itself raises the syntax error
    for _, field, spec, _ in parsed:
        if field is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise RenderError("nested replacement fields in a format string are not allowed")
        widths += sum(_check_width(int(number), limit) for number in _NUMBER.findall(spec or ""))
    return len(template) + widths + fields * _largest(values, limit)


def _replace_size(text: Any, old: Any, new: Any, count: Any) -> int:
    if not isinstance(text, str) or not isinstance(new, str):
        return len(text) if isinstance(text, str | bytes) else 0
    if isinstance(old, str):
        found = text.count(old) if old else len(text) + 1
        if isinstance(count, int) and count >= 0:
            found = min(found, count)
        return len(text) + found * max(len(new) - len(old), 0)
    return len(text)


def _joined_size(items: Any, separator: Any, limit: int) -> int:
    if not isinstance(items, list | tuple | set | frozenset | Mapping | str):
        return 0
    count = len(items)
    separator_size = len(separator) if isinstance(separator, str | bytes) else 0
    return text_size(items, limit) + separator_size * max(count - 1, 0)


def _method_size(owner: str | bytes, name: str, args: tuple[Any, ...], limit: int) -> int:
    """Upper bound of the result of ``owner.<name>(*args)`` for the methods that amplify."""
    first = args[0] if args else None
    if name in {"ljust", "rjust", "center", "zfill"}:
        return max(len(owner), _check_width(first, limit))
    if name == "expandtabs":
        tab = first if isinstance(first, int) else 8
        return len(owner) * max(tab, 1)
    if name == "replace" and len(args) >= 2:
        return _replace_size(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    if name == "join":
        return _joined_size(first, owner, limit)
    if name == "translate" and isinstance(first, Mapping):
        return len(owner) * max(_largest(first.values(), limit), 1)
    return 0


class _Guards(NodeTransformer):
    """Routes every loop through the loop budget and every ``~`` through the size check."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 - Jinja's visitor names
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        joined = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(joined, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


@pass_context
def _loop(context: Context, iterable: Any) -> Iterator[Any]:
    budget: _Budget | None = getattr(context.environment, "budget", None)
    for item in iterable:
        if budget is not None:
            budget.loops_left -= 1
            if budget.loops_left < 0:
                raise RenderError(f"template loops run more than {LOOP_BUDGET} times")
            budget.tick()
        yield item


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    environment = context.environment
    limit: int = getattr(environment, "max_length", 0)
    _check_size(sum(text_size(part, limit) for part in parts), limit)
    return "".join(str(_printable(part, limit)) for part in parts)


def _printable(value: Any, limit: int) -> Any:
    """``value`` if it is data; functions, classes and other objects are refused."""
    if isinstance(value, _DATA):
        return value
    stack, seen = [value], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            raise _too_long(limit)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif not isinstance(item, _DATA):
            raise RenderError(f"a template cannot output a {type(item).__name__} object")
    return value


class _DeadlineSandbox(ImmutableSandboxedEnvironment):
    """Checks the current render's deadline on every call, attribute access and loop iteration,
    and the size of every value-amplifying operation before it runs."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    budget: _Budget | None = None

    def __init__(self, *, max_length: int) -> None:
        super().__init__(autoescape=False, keep_trailing_newline=True)
        self.max_length = max_length
        self.finalize = self._finalize
        self.filters = {name: self._guarded(name, f) for name, f in self.filters.items()}
        self.filters[_LOOP_FILTER] = _loop
        self.filters[_CONCAT_FILTER] = _concat
        self.globals["lipsum"] = self._lipsum

    def _tick(self) -> None:
        if self.budget is not None:
            self.budget.tick()

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        check_nesting(self, source)
        tree = super()._parse(source, name, filename)
        guarded = _Guards().visit(tree)
        guarded.set_environment(self)
        return guarded  # type: ignore[no-any-return]

    def _finalize(self, value: Any) -> Any:
        if not isinstance(value, str):
            _check_size(text_size(value, self.max_length), self.max_length)
        return _printable(value, self.max_length)

    def call(self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        self._tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes):
            name = getattr(__obj, "__name__", "")
            if name == "join" and args and not isinstance(args[0], list | tuple | str):
                args = (list(args[0]), *args[1:])
            _check_size(_method_size(owner, name, args, self.max_length), self.max_length)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        self._tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self._tick()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self._tick()
        limit = self.max_length
        if operator == "*":
            self._check_repeat(left, right)
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                _check_bits(left.bit_length() * right)
        elif operator == "+":
            if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
                _check_size(text_size(left, limit) + text_size(right, limit), limit)
        elif operator == "%" and isinstance(left, str):
            _check_size(_printf_size(left, right, limit), limit)
        return super().call_binop(context, operator, left, right)

    def _check_repeat(self, left: Any, right: Any) -> None:
        if isinstance(left, int) and not isinstance(right, int):
            left, right = right, left
        if isinstance(left, int) and isinstance(right, int):
            _check_bits(left.bit_length() + right.bit_length())
        elif isinstance(left, str | bytes | list | tuple) and isinstance(right, int) and left:
            _check_size(text_size(left, self.max_length) * max(right, 0), self.max_length)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template: str = value.__self__
        is_map = value.__name__ == "format_map"
        limit = self.max_length

        def checked(*args: Any, **kwargs: Any) -> str:
            if is_map and args and isinstance(args[0], Mapping):
                values = list(args[0].values())
            else:
                values = [*args, *kwargs.values()]
            _check_size(_format_size(template, values, limit), limit)
            return wrapped(*args, **kwargs)

        return functools.update_wrapper(checked, wrapped)

    def _lipsum(self, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        if isinstance(n, int) and isinstance(max, int):
            _check_size(n * max * 16, self.max_length)
        return generate_lorem_ipsum(n=n, html=html, min=min, max=max)

    def _guarded(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        skip = 1 if _PassArg.from_obj(original) is not None else 0
        sized = name not in _UNSIZED_FILTERS
        limit = self.max_length

        @functools.wraps(original)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._tick()
            value, rest = (args[skip], args[skip + 1 :]) if len(args) > skip else (None, ())
            if (
                name in _MATERIALISED
                and isinstance(value, Iterable)
                and not isinstance(value, Sized)
            ):
                # A generator's size is known only once it ran: run it first, then measure.
                value = list(value)
                args = (*args[:skip], value, *rest)
            if sized:
                _check_size(text_size(value, limit), limit)
            _check_size(_filter_size(name, value, rest, kwargs, limit), limit)
            return original(*args, **kwargs)

        return guarded


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise RenderError(
            f"template arithmetic would make a number of more than {MAX_INT_BITS} bits"
        )


def _argument(rest: tuple[Any, ...], kwargs: Mapping[str, Any], position: int, name: str) -> Any:
    return rest[position] if len(rest) > position else kwargs.get(name)


def _filter_size(  # noqa: PLR0911 - one estimate per amplifying filter
    name: str, value: Any, rest: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int
) -> int:
    """Upper bound of a filter's output size, for the filters whose arguments amplify it."""
    size = len(value) if isinstance(value, str) else 0
    if name in {"center", "indent"}:
        width = _check_width(_argument(rest, kwargs, 0, "width"), limit)
        lines = value.count("\n") + 1 if isinstance(value, str) else 1
        return size + width * (lines if name == "indent" else 1)
    if name == "format" and isinstance(value, str):
        return _printf_size(value, kwargs or tuple(rest), limit)
    if name == "replace":
        count = _argument(rest, kwargs, 2, "count")
        return _replace_size(
            value, _argument(rest, kwargs, 0, "old"), _argument(rest, kwargs, 1, "new"),
            -1 if count is None else count,
        )  # fmt: skip
    if name == "join":
        return _joined_size(value, _argument(rest, kwargs, 0, "d"), limit)
    if name == "wordwrap":
        width = _argument(rest, kwargs, 0, "width")
        wrap = _argument(rest, kwargs, 2, "wrapstring")
        breaks = size // max(width if isinstance(width, int) else 79, 1) + 1
        return size + breaks * (len(wrap) if isinstance(wrap, str) else 2)
    if name == "urlize":
        extras = sum(
            len(part)
            for part in (_argument(rest, kwargs, 2, "target"), _argument(rest, kwargs, 3, "rel"))
            if isinstance(part, str)
        )
        candidates = value.count(".") + value.count("@") + 1 if isinstance(value, str) else 1
        return 3 * size + candidates * (extras + 64)
    if name in {"batch", "slice"}:
        count = _argument(rest, kwargs, 0, "linecount" if name == "batch" else "slices")
        return _check_width(count, limit, "count")
    if name == "sum":
        start = _argument(rest, kwargs, 1, "start")
        if isinstance(start, str | list | tuple):
            return text_size(start, limit) + text_size(value, limit)
        return 0
    if name == "tojson":
        indent = _argument(rest, kwargs, 0, "indent")
        _check_width(indent, MAX_JSON_INDENT, "tojson indent")
    return 0


class TemplateRenderer:
    """One sandbox per process; not shared between threads."""

    def __init__(self, *, timeout: float = 1.0, max_length: int = 200_000) -> None:
        self.timeout = timeout
        self.max_length = max_length
        self.environment = _DeadlineSandbox(max_length=max_length)
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
        budget = _Budget(time.monotonic() + self.timeout, self.max_length)
        self.environment.budget = budget
        try:
            template = self._cache.get(source)
            if template is None:
                template = self.environment.from_string(source)
                if len(self._cache) < 10_000:
                    self._cache[source] = template
            return self._collect(template.generate(dict(context)), budget)
        except RenderError:
            raise
        except TemplateError as exc:
            raise RenderError(f"{type(exc).__name__}: {exc.message or exc}") from None
        except RecursionError:
            raise RenderError("TemplateSyntaxError: the template is nested too deeply") from None
        except Exception as exc:
            # Whatever a template does wrong fails its delivery, never the batch it came in.
            # Other errors' messages may quote payload values: only the class is named.
            raise RenderError(f"{type(exc).__name__} while rendering") from None
        finally:
            self.environment.budget = None

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
        text = "".join(parts)
        # Rendered text is stored (PostgreSQL refuses NUL) and sent (UTF-8 cannot encode a lone
        # surrogate): either would fail far from here, so the template fails here.
        if "\x00" in text:
            raise RenderError("rendered text contains a NUL character")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise RenderError("rendered text is not valid Unicode (a lone surrogate)") from None
        return text

    def render_fields(
        self, templates: Mapping[str, str], context: Mapping[str, Any]
    ) -> dict[str, str]:
        return {name: self.render(source, context) for name, source in templates.items()}


def required_payload_keys(sources: Iterable[str]) -> set[str]:
    """Top-level ``payload`` keys the templates use without a ``default`` filter."""
    environment = SandboxedEnvironment()
    required: set[str] = set()
    trees = [compile_template(environment, source) for source in sources]
    for tree in trees:
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
    for tree in trees:
        for test in tree.find_all(nodes.Test):
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
