"""Issue 18, item 1: template renders and bundle imports are bounded (output, loops, arithmetic,
wall time, memory), and what goes past a bound fails with a clear message, leaving no process."""

from __future__ import annotations

import time

import pytest

from emailexport.bundle import load_bundle
from emailexport.errors import ValidationFailed
from emailexport.render import isolated, render_document
from emailexport.render.isolated import check_template, render_isolated
from emailexport.render.sandbox import RenderLimits, compile_template
from tests.helpers import render_inputs


def _with_template(inp, component: str, template: str):
    system = inp.design_system
    components = [c.model_copy(update={"template": template}) if c.name == component else c for c in system.components]
    return inp.model_copy(update={"design_system": system.model_copy(update={"components": components})})


def _input(mini, template: str, component: str = "paragraph"):
    return _with_template(render_inputs(mini, 3, 1, ["en-US"])["en-US"], component, template)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 'a'*10**9 }}", "'*' refused"),
        ("{{ [0]*10**9 }}", "'*' refused"),
        ("{{ (10**(10**8)) % 7 }}", "'**' refused"),
        ("{{ 99 ** 99 ** 99 }}", "'**' refused"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loop iterations"),
        ("{{ 'a'|center(1000000000) }}", "filter 'center'"),
        ("{{ 'a'.ljust(10**9) }}", "call refused"),
        ("{{ '%0999999999d' % 1 }}", "format width"),
        ("{{ '{:>999999999}'.format(1) }}", "format width"),
        ("{{ range(10)|slice(1000000000)|list }}", "filter 'slice'"),
        ("{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% endif %}{% endmacro %}{{ f('ab', 40) }}", "'~' refused"),
        ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "output over"),
    ],
)
def test_a_hostile_template_fails_its_locale_quickly_with_a_clear_message(mini, template, expected):
    started = time.monotonic()
    doc = render_document(_input(mini, template))
    assert time.monotonic() - started < 5
    assert doc.html == ""
    assert any("render limit exceeded in component 'paragraph'" in e and expected in e for e in doc.errors), doc.errors


def test_ordinary_arithmetic_and_formatting_still_work(mini):
    template = ("<tr><td>{{ 2**10 }} {{ 10 % 3 }} {{ '{:,}'.format(5000000) }} {{ 5000000|filesizeformat }} "
                "{{ 'x%sy' % 'a' }} {{ -3 }} {{ 'ab' * 3 }} {{ 'a' ~ 1 }} {{ body }}</td></tr>")
    doc = render_document(_input(mini, template))
    assert doc.errors == []
    assert "1024 1 5,000,000 5.0 MB xay -3 ababab a1" in doc.html


def test_compiling_does_not_fold_huge_constants():
    """Jinja folds constant expressions while compiling; the intercepted operators are not folded."""
    started = time.monotonic()
    compile_template("{{ (10**(10**8)) % 7 }}{{ 'a' * 10**9 }}")
    assert time.monotonic() - started < 2


def test_limits_are_settings(mini):
    limits = RenderLimits(max_output_chars=5000)
    doc = render_document(_input(mini, "{{ 'a' * 6000 }}"), limits)
    assert any("over 5000 characters" in e for e in doc.errors)
    assert render_document(_input(mini, "{{ 'a' * 6000 }}")).errors == []


@pytest.fixture
def spawned(monkeypatch):
    """The render workers started during the test."""
    isolated.shutdown_workers()  # no warm worker from an earlier test
    started: list[isolated._Worker] = []
    original = isolated._Worker.__init__

    def record(self, memory_mb):
        original(self, memory_mb)
        started.append(self)

    monkeypatch.setattr(isolated._Worker, "__init__", record)
    return started


def test_a_gil_holding_expression_is_killed_at_the_time_limit(mini, spawned):
    # The arithmetic check is switched off so that the expression really runs (the attack):
    # the worker holds its GIL in one C call and only the process boundary can stop it.
    limits = RenderLimits(timeout_seconds=2, max_int_bits=10**10)
    started = time.monotonic()
    doc = render_isolated(_input(mini, "{{ (10**(10**8)) % 7 }}"), limits)
    assert time.monotonic() - started < 30
    assert doc.errors == ["rendering locale en-US stopped: over the 2 s time limit "
                          "(EMAILEXPORT_RENDER_TIMEOUT_SECONDS); the worker process was killed"]
    assert spawned and all(w.process.poll() is not None for w in spawned)  # no process left running
    # The next render gets a fresh worker and works.
    assert render_isolated(_input(mini, "<tr><td>{{ body }}</td></tr>"), limits).errors == []


def test_memory_is_capped_in_the_worker(mini):
    limits = RenderLimits(memory_mb=300, max_output_chars=10**10, timeout_seconds=30)
    doc = render_isolated(_input(mini, "{{ ('a' * 10**9)|length }}"), limits)
    assert any("out of memory" in e for e in doc.errors), doc.errors


def test_an_isolated_render_matches_the_in_process_one(mini):
    inp = render_inputs(mini, 3, 1, ["de-DE"], profile="p-braze")["de-DE"]
    assert render_isolated(inp, RenderLimits()) == render_document(inp)


def test_import_refuses_a_template_that_fails_its_sample_render(mini_data):
    mini_data["design_systems"][0]["components"][1]["template"] = "<tr><td>{{ 'a'*10**9 }}</td></tr>"
    mini_data["design_systems"][0]["components"][2]["template"] = (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    with pytest.raises(ValidationFailed) as caught:
        load_bundle(mini_data)
    errors = caught.value.errors
    assert "went past a render limit: '*' refused" in errors["design_systems[0].components[1].template"][0]
    assert "loop iterations" in errors["design_systems[0].components[2].template"][0]


def test_import_is_bounded_even_when_compiling_runs_the_arithmetic(mini_data, monkeypatch):
    """`{{ (10**(10**8)) % 7 }}` hung `workspace import` for 300 s+; with the arithmetic check off
    (so compiling and rendering really run it), the worker is killed at the time limit."""
    monkeypatch.setenv("EMAILEXPORT_RENDER_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("EMAILEXPORT_RENDER_MAX_INT_BITS", str(10**10))
    from emailexport.settings import get_settings

    get_settings.cache_clear()
    try:
        mini_data["design_systems"][0]["components"][1]["template"] = "{{ (10**(10**8)) % 7 }}"
        started = time.monotonic()
        with pytest.raises(ValidationFailed) as caught:
            load_bundle(mini_data)
        assert time.monotonic() - started < 60
        assert "over the 2 s time limit" in caught.value.errors["design_systems[0].components[1].template"][0]
    finally:
        get_settings.cache_clear()


def test_check_template_accepts_the_usual_template():
    from emailexport.models.workspace import Component

    component = Component(name="p", fields=[{"variable": "body", "type": "text"}],
                          template="<p style='color:{{ design_tokens.brand }}'>{{ body }}</p>")
    assert check_template(component, {"brand": "#000"}, RenderLimits()) == []
