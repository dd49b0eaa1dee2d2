"""Issue 18, item 1: template renders and bundle imports are bounded (output, loops, arithmetic,
wall time, memory), and what goes past a bound fails with a clear message, leaving no process."""

from __future__ import annotations

import time

import pytest

from emailexport.bundle import load_bundle
from emailexport.errors import ValidationFailed
from emailexport.render import isolated, render_document
from emailexport.render.isolated import RenderAborted, check_template, render_isolated
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
        ("{{ '%0999999999d'|format(1) }}", "format width"),
        ("{{ '{:>999999999}'.format(1) }}", "format width"),
        ("{{ range(10)|slice(1000000000)|list }}", "filter 'slice'"),
        ("{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% endif %}{% endmacro %}{{ f('ab', 40) }}", "'~' refused"),
        ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "output over"),
    ],
)
def test_a_hostile_template_fails_its_locale_quickly_with_a_clear_message(mini, template, expected):
    started = time.monotonic()
    doc = render_document(_input(mini, template))
    assert time.monotonic() - started < 30  # milliseconds on an idle machine; generous for a loaded one
    assert doc.html == ""
    assert any("render limit exceeded in component 'paragraph'" in e and expected in e for e in doc.errors), doc.errors


def test_ordinary_arithmetic_and_formatting_still_work(mini):
    template = ("<tr><td>{{ 2**10 }} {{ 10 % 3 }} {{ '{:,}'.format(5000000) }} {{ 5000000|filesizeformat }} "
                "{{ 'x%sy' % 'a' }} {{ -3 }} {{ 'ab' * 3 }} {{ 'a' ~ 1 }} {{ '%d'|format(5000000) }} "
                "{{ range(3)|join(',') }} {{ body }}</td></tr>")
    doc = render_document(_input(mini, template))
    assert doc.errors == []
    assert "1024 1 5,000,000 5.0 MB xay -3 ababab a1 5000000 0,1,2" in doc.html


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
    with pytest.raises(RenderAborted) as caught:
        render_isolated(_input(mini, "{{ (10**(10**8)) % 7 }}"), limits)
    assert time.monotonic() - started < 30
    assert str(caught.value) == ("rendering locale en-US stopped: over the 2 s time limit "
                                 "(EMAILEXPORT_RENDER_TIMEOUT_SECONDS); the worker process was killed")
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


# -- item 5: URL schemes -------------------------------------------------------------------------

HOSTILE_URLS = [
    "javascript:alert(1)", "java\tscript:alert(4)", " JaVaScRiPt:alert(1)", "java\nscript:alert(1)",
    "\x01javascript:alert(1)", "java\u200bscript:alert(1)", "vbscript:msgbox(1)", "VBScript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>", "DATA:text/html;base64,PHNjcmlwdD4=", "file:///etc/passwd",
    "[[tag:first_name]]/x", "example.com",
]  # fmt: skip


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_an_unsafe_url_value_is_refused_at_render(mini, url):
    from emailexport.models import FieldValue

    inp = render_inputs(mini, 3, 1, ["en-US"])["en-US"]
    instances = list(inp.content.instances)
    paragraph = instances[1]
    values = {b: {loc: {**v, "link": FieldValue(value=url)} for loc, v in by.items()}
              for b, by in paragraph.field_values.items()}
    instances[1] = paragraph.model_copy(update={"field_values": values})
    inp = inp.model_copy(update={"content": inp.content.model_copy(update={"instances": instances})})
    doc = render_document(inp)
    reasons = ("not allowed", "needs", "tag alone")
    assert any(".link:" in e and any(r in e for r in reasons) for e in doc.errors), doc.errors
    assert "alert" not in doc.html and "msgbox" not in doc.html


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_an_unsafe_url_value_is_refused_at_import(mini_data, url):
    paragraph = mini_data["emails"][0]["content"]["instances"][1]
    branch = next(iter(paragraph["field_values"]))
    paragraph["field_values"][branch]["en-US"]["link"] = {"value": url}
    with pytest.raises(ValidationFailed) as caught:
        load_bundle(mini_data)
    assert any(path.endswith(".link") for path in caught.value.errors), caught.value.errors


@pytest.mark.parametrize("url", ["https://example.com/a", "HTTP://EXAMPLE.COM", "mailto:a@example.com",
                                 "tel:+4930123", "[[tag:first_name]]", " https://example.com/?n=[[tag:first_name]] ",
                                 "#top"])
def test_allowed_urls_pass(url):
    from emailexport.url_policy import url_problem

    assert url_problem(url, {"first_name": "https://example.com"}.get) is None


def test_a_tag_only_url_needs_a_safe_fallback(mini_data):
    from emailexport.url_policy import url_problem

    assert "fallback of [[tag:x]]" in url_problem("[[tag:x]]", {"x": "javascript:alert(1)"}.get)
    mini_data["personalization_tags"][0]["fallback"] = "javascript:alert(1)"
    paragraph = mini_data["emails"][0]["content"]["instances"][1]
    branch = next(iter(paragraph["field_values"]))
    paragraph["field_values"][branch]["en-US"]["link"] = {"value": "[[tag:first_name]]"}
    with pytest.raises(ValidationFailed) as caught:
        load_bundle(mini_data)
    assert any("fallback of [[tag:first_name]]" in m for ms in caught.value.errors.values() for m in ms)


@pytest.mark.parametrize("href", ["java\tscript:alert(4)", "vbscript:msgbox(1)", "data:text/html,x", "JAVASCRIPT:x"])
def test_the_link_checks_report_unsafe_schemes(href):
    from emailexport.checks import CheckSettings, run_checks

    html = f'<!DOCTYPE html><html lang="en"><body><a href="{href}">Buy</a></body></html>'
    findings = run_checks(html, "Subject", "Preheader", settings=CheckSettings())
    assert [f for f in findings if f.code == "link_unsafe_scheme"], findings


# -- item 7: text values and fallbacks are text ----------------------------------------------------


def _with_value(mini, profile, variable, value, *, fallback=None, instance=1):
    from emailexport.models import FieldValue

    inp = render_inputs(mini, 3, 1, ["en-US"], profile=profile)["en-US"]
    instances = list(inp.content.instances)
    target = instances[instance]
    values = {b: {loc: {**v, variable: FieldValue(value=value)} for loc, v in by.items()}
              for b, by in target.field_values.items()}
    instances[instance] = target.model_copy(update={"field_values": values})
    update = {"content": inp.content.model_copy(update={"instances": instances})}
    if fallback is not None:
        update["tags"] = {k: t.model_copy(update={"fallback": fallback}) for k, t in inp.tags.items()}
    return inp.model_copy(update=update)


def _final(inp):
    from emailexport.transforms.markers import restore_markers

    doc = render_document(inp)
    return doc, restore_markers(doc.html, doc.tokens)


@pytest.mark.parametrize(
    ("profile", "value", "expected", "live"),
    [
        ("p-braze", "Total {{ 7*7 }}", "Total {% raw %}{{{% endraw %} 7*7 }}", "Total {{ 7*7 }}"),
        ("p-braze", "{% connected_content https://evil.example %}",
         "{% raw %}{%{% endraw %} connected_content https://evil.example %}", "{% connected_content"),
        ("p-sendgrid", "Total {{ 7*7 }}", "Total \\{{ 7*7 }}", "Total {{ 7*7 }}"),
    ],
)
def test_esp_syntax_in_a_text_value_is_escaped_for_the_dialect(mini, profile, value, expected, live):
    doc, html = _final(_with_value(mini, profile, "body", value))
    assert doc.errors == []
    assert expected in html
    assert live not in html.replace(expected, "")


def test_the_subject_is_text_too(mini):
    inp = render_inputs(mini, 3, 1, ["en-US"], profile="p-braze")["en-US"]
    subject = inp.content.subject.model_copy(update={"branch_content": {"null_branch": {"en-US": "Hi {{ 7*7 }}"}}})
    inp = inp.model_copy(update={"content": inp.content.model_copy(update={"subject": subject})})
    doc = render_document(inp)
    from emailexport.transforms.markers import restore_markers

    assert restore_markers(doc.subject, doc.tokens) == "Hi {% raw %}{{{% endraw %} 7*7 }}"


def test_a_merge_tag_in_text_for_mailchimp_fails_the_locale(mini):
    doc, _ = _final(_with_value(mini, "p-mailchimp", "body", "Hello *|FNAME|*"))
    assert any("mailchimp" in e and "'*|'" in e for e in doc.errors), doc.errors


def test_code_fields_are_not_escaped(mini):
    doc, html = _final(_with_value(mini, "p-braze", "html", "<b>{{ first_name }}</b>", instance=2))
    assert doc.errors == [] and "<b>{{ first_name }}</b>" in html


@pytest.mark.parametrize("profile", ["p-braze", "p-sendgrid", "p-mailchimp", None])
def test_a_hostile_fallback_is_html_escaped_where_it_lands(mini, profile):
    attack = '"><script>alert(1)</script>'
    doc, html = _final(_with_value(mini, profile, "body", "Hi [[tag:first_name]]", fallback=attack))
    assert "<script>" not in html, html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    if profile is not None:
        assert doc.errors == [] or all("both" in e for e in doc.errors)


def test_a_hostile_fallback_in_rich_text_without_a_syntax_is_escaped(mini):
    from emailexport.models import Component, ComponentField

    inp = _with_value(mini, None, "body", "x", fallback='<img src=x onerror="alert(1)">')
    system = inp.design_system
    rich = Component(name="rich", fields=[ComponentField(variable="body", type="rich_text")],
                     template="<tr><td>{{ body }}</td></tr>")
    inp = inp.model_copy(update={
        "design_system": system.model_copy(update={"components": [*system.components, rich]}),
        "tags": {k: t.model_copy(update={"default_syntax": None}) for k, t in inp.tags.items()},
    })
    instances = list(inp.content.instances)
    instances[1] = instances[1].model_copy(update={"component": "rich", "field_values": {
        "null_branch": {"en-US": {"body": {"value": "<p>Hi [[tag:first_name]]</p>"}}}}})
    inp = inp.model_copy(update={"content": inp.content.model_copy(update={"instances": instances})})
    doc, html = _final(inp)
    assert "<img src=x" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html, doc.errors


def test_a_value_cannot_forge_a_marker(mini):
    _, html = _final(_with_value(mini, "p-braze", "body", "x \ue0000\ue001 y"))
    assert "x 0 y" in html


# -- item 1 end to end: the export flow ----------------------------------------------------------


def _import_unchecked(store, data):
    """Put a bundle in the store without the import checks (as if imported before they existed)."""
    from emailexport.bundle import import_bundle
    from emailexport.bundle_model import WorkspaceBundle

    import_bundle(store, WorkspaceBundle.model_validate(data))


@pytest.mark.usefixtures("prefect_harness")
def test_an_export_with_a_hostile_template_fails_its_locale_and_the_record(mini, mini_data):
    from flows.export_email import export_email
    from tests.helpers import create_export

    mini_data["design_systems"][0]["components"][1]["template"] = "<tr><td>{{ (10**(10**8)) % 7 }}</td></tr>"
    _import_unchecked(mini, mini_data)
    record = create_export(mini, 3, 1, ["en-US", "de-DE"])
    started = time.monotonic()
    export_email(record.id, return_state=True)
    assert time.monotonic() - started < 120
    record = mini.require_export(record.id)
    assert record.status == "failed"
    assert "render limit exceeded in component 'paragraph'" in record.export_errors["en-US"][0]


@pytest.mark.usefixtures("prefect_harness")
def test_an_export_whose_render_runs_past_the_time_limit_fails_and_is_not_cached(mini, mini_data, monkeypatch):
    from emailexport.settings import get_settings
    from flows.export_email import export_email
    from tests.helpers import create_export

    monkeypatch.setenv("EMAILEXPORT_RENDER_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("EMAILEXPORT_RENDER_MAX_INT_BITS", str(10**10))  # let the arithmetic really run
    get_settings.cache_clear()
    try:
        mini_data["design_systems"][0]["components"][1]["template"] = (
            "<tr><td>{% if render_context.locale == 'de-DE' %}{{ (10**(10**8)) % 7 }}{% endif %}{{ body }}</td></tr>")
        _import_unchecked(mini, mini_data)
        record = create_export(mini, 3, 1, ["en-US", "de-DE"])
        export_email(record.id, return_state=True)
        record = mini.require_export(record.id)
        assert record.status == "failed"
        assert record.results["en-US"].status == "completed"
        assert "over the 2 s time limit" in record.export_errors["de-DE"][0]
        # A timeout is not a cached result: the next export tries the locale again.
        again = create_export(mini, 3, 1, ["de-DE"])
        export_email(again.id, return_state=True)
        assert "over the 2 s time limit" in mini.require_export(again.id).export_errors["de-DE"][0]
    finally:
        get_settings.cache_clear()
