"""The sandboxed Jinja2 environment component templates run in.

Templates come from workspace data, so they are untrusted code: they run in Jinja2's immutable
sandbox (no attribute access to dunders or internals, no mutation of the values handed in, ranges
capped), with autoescape on (field values are data; only rich_text, code and rendered children are
marked safe by the renderer) and strict undefined (a misspelt variable is an error, not a blank).
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["compile_template", "environment"]

_ENV = ImmutableSandboxedEnvironment(
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
    """Compile `source` once per process; raises `jinja2.TemplateSyntaxError` on a bad template."""
    return _ENV.from_string(source)
