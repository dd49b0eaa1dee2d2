"""The sandboxed Jinja2 environment component templates run in, and its budget.

Templates come from workspace data, so they are untrusted code: they run in Jinja2's immutable
sandbox (no attribute access to dunders or internals, no mutation of the values handed in, ranges
capped), with autoescape on (field values are data; only rich_text, code and rendered children are
marked safe by the renderer) and strict undefined (a misspelt variable is an error, not a blank).

On top of Jinja's sandbox, every render has a budget (`RenderLimits`, docs/security.md):

- arithmetic: `*`, `**`, `//`, `%`, `/`, `+`, `-` and unary `-` are intercepted
  (`intercepted_binops`); an operation whose result would exceed `max_int_bits` or
  `max_output_chars` (a repeated string or list, a `%` format with a huge width) is refused before
  it runs. Interception also stops Jinja's compiler from folding these operators at compile time.
  Jinja has no `<<`, `>>`, `&` or `|`-as-bitwise operators, and dunder methods are not reachable.
- calls and filters: an integer argument larger than `max_output_chars` (`'a'.ljust(10**9)`,
  `'a'|center(10**9)`) is refused, and so is a string result longer than it;
- loops: every `{% for %}` iterates through a counter; past `max_loop_iterations` in one render
  the render stops;
- output: a template's output is streamed and stops past `max_output_chars`.

What this cannot stop on its own (a single C-level operation holding the GIL, a pathological
regular expression in a filter, memory fragmentation) is bounded by the render worker process
(`emailexport.render.isolated`): wall time, address space and CPU time, killed on overrun.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "RenderLimitExceeded", "RenderLimits", "budget", "compile_template", "environment", "render_bounded_template",
]


class RenderLimitExceeded(SecurityError):
    """A template went past one of its render limits. Safe to show the user."""


@dataclass(frozen=True)
class RenderLimits:
    """What one render may use (settings: docs/security.md). Process limits apply in the worker."""

    max_output_chars: int = 2_000_000
    max_loop_iterations: int = 1_000_000
    max_int_bits: int = 4096
    timeout_seconds: float = 10.0
    memory_mb: int = 512


@dataclass
class _Budget:
    limits: RenderLimits
    iterations: int = 0
    notes: list[str] = field(default_factory=list)


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("render_budget", default=None)
_DEFAULT = RenderLimits()


def _current() -> _Budget:
    found = _BUDGET.get()
    return found if found is not None else _Budget(_DEFAULT)


@contextmanager
def budget(limits: RenderLimits) -> Iterator[None]:
    """Run the renders inside the block under `limits`, with a fresh loop counter."""
    token = _BUDGET.set(_Budget(limits))
    try:
        yield
    finally:
        _BUDGET.reset(token)


_FORMAT_WIDTH_RE = re.compile(r"%[-+ #0]*(\d+)(?:\.(\d+))?|\{[^{}]*?(\d{4,})[^{}]*\}")


def _check_size(value: Any, limits: RenderLimits, what: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > limits.max_int_bits:
        raise RenderLimitExceeded(f"{what}: a number over {limits.max_int_bits} bits")
    if isinstance(value, str | bytes | list | tuple) and len(value) > limits.max_output_chars:
        raise RenderLimitExceeded(f"{what}: a value over {limits.max_output_chars} characters")
    return value


def _int_bits(value: Any) -> int:
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return value.bit_length()
    if isinstance(value, float):
        return 64
    return 0


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _check_format(template: str, limits: RenderLimits, what: str) -> None:
    """`'%0999999999d' % 1` and `'{:>999999999}'.format(1)` build huge strings from a short one."""
    for match in _FORMAT_WIDTH_RE.finditer(template):
        for group in match.groups():
            if group and int(group) > limits.max_output_chars:
                raise RenderLimitExceeded(f"{what}: a format width over {limits.max_output_chars}")


def _check_binop(op: str, left: Any, right: Any, limits: RenderLimits) -> None:
    """Refuse, before running it, an operation whose result would be over the budget."""
    what = f"'{op}' refused"
    bits = limits.max_int_bits
    if op == "**":
        if max(_int_bits(left), _int_bits(right)) > bits:
            raise RenderLimitExceeded(f"{what}: a number over {bits} bits")
        grows = isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0
        if grows and _int_bits(left) * right > bits:
            raise RenderLimitExceeded(f"{what}: the result would be over {bits} bits")
        return
    if op == "*":
        for seq, count in ((left, right), (right, left)):
            size = _sized(seq)
            if size is not None and isinstance(count, int) and size * max(count, 0) > limits.max_output_chars:
                raise RenderLimitExceeded(f"{what}: the result would be over {limits.max_output_chars} characters")
        if isinstance(left, int) and isinstance(right, int) and _int_bits(left) + _int_bits(right) > bits:
            raise RenderLimitExceeded(f"{what}: the result would be over {bits} bits")
        return
    if op == "%" and isinstance(left, str):
        _check_format(left, limits, what)
        return
    if op in ("+", "-", "//", "/", "%"):
        if max(_int_bits(left), _int_bits(right)) > bits:
            raise RenderLimitExceeded(f"{what}: a number over {bits} bits")
        if op == "+":
            left_size, right_size = _sized(left), _sized(right)
            if left_size is not None and right_size is not None and left_size + right_size > limits.max_output_chars:
                raise RenderLimitExceeded(f"{what}: the result would be over {limits.max_output_chars} characters")


def _guard_filter(func: Callable[..., Any], what: str) -> Callable[..., Any]:
    """A filter with its integer arguments (not the value it filters) and its result checked."""
    # The filtered value comes first, after the context/environment for `pass_*` filters.
    skip = 2 if hasattr(func, "jinja_pass_arg") else 1
    formats = what == "filter 'format'"

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        limits = _current().limits
        if formats:
            # `'%d'|format(5000000)` is fine; only the widths in the format string matter.
            if args and isinstance(args[0], str):
                _check_format(args[0], limits, what)
        else:
            for arg in (*args[skip:], *kwargs.values()):
                if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > limits.max_output_chars:
                    raise RenderLimitExceeded(f"{what}: an argument over {limits.max_output_chars}")
        return _check_size(func(*args, **kwargs), limits, what)

    return guarded


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "//", "/", "%", "+", "-"})
    intercepted_unops = frozenset({"-"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, func in list(self.filters.items()):
            self.filters[name] = _guard_filter(func, f"filter '{name}'")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits = _current().limits
        _check_binop(operator, left, right, limits)
        return _check_size(self.binop_table[operator](left, right), limits, f"'{operator}' refused")

    def call_unop(self, context: Context, operator: str, arg: Any) -> Any:
        return self.unop_table[operator](arg)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        limits = _current().limits
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        if getattr(method, "__name__", "") in ("format", "format_map") and isinstance(
            getattr(method, "__self__", None), str
        ):
            # `'{:,}'.format(5000000)` is fine; only the widths in the format string matter.
            _check_format(method.__self__, limits, "call refused")
        else:
            for arg in (*args, *kwargs.values()):
                if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > limits.max_output_chars:
                    raise RenderLimitExceeded(f"call refused: an argument over {limits.max_output_chars}")
        result = super().call(__context, __obj, *args, **kwargs)
        return _check_size(result, limits, "call refused")

    def loop_guard(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Every `{% for %}` loops through this: it counts iterations against the budget."""
        state = _current()
        for item in iterable:
            state.iterations += 1
            if state.iterations > state.limits.max_loop_iterations:
                raise RenderLimitExceeded(f"over {state.limits.max_loop_iterations} loop iterations in one render")
            yield item

    def size_guard(self, value: Any) -> Any:
        """`a ~ b` is checked after it runs: a doubling chain stops at twice the output budget."""
        return _check_size(value, _current().limits, "'~' refused")

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            # `environment.loop_guard(...)`: a template cannot rebind it (it is not a name in scope).
            loop.iter = nodes.Call(nodes.EnvironmentAttribute("loop_guard"), [loop.iter], [], None, None,
                                   lineno=loop.lineno)
        for concat in list(tree.find_all(nodes.Concat)):
            concat.nodes = [nodes.Call(nodes.EnvironmentAttribute("size_guard"), [nodes.Concat(concat.nodes)], [],
                                       None, None, lineno=concat.lineno)]
        return tree


_ENV = _Environment(
    autoescape=True,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    auto_reload=False,
)


def environment() -> ImmutableSandboxedEnvironment:
    """The one shared environment (stateless apart from its compile cache)."""
    return _ENV


@lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    """Compile `source` once per process; raises `jinja2.TemplateSyntaxError` on a bad template.

    Compiling runs code (Jinja folds constant expressions), so call it inside the render worker
    (`emailexport.render.isolated`), never in a process that must stay responsive.
    """
    return _ENV.from_string(source)


def render_bounded_template(template: Template, context: dict[str, Any]) -> str:
    """`template.render(context)`, streamed, stopping past the budget's output size.

    Outside a `budget(...)` block the default limits apply, with a counter for this render alone.
    """
    if _BUDGET.get() is None:
        with budget(_DEFAULT):
            return render_bounded_template(template, context)
    limits = _current().limits
    parts: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > limits.max_output_chars:
            raise RenderLimitExceeded(f"output over {limits.max_output_chars} characters")
        parts.append(chunk)
    return "".join(parts)
