"""Step 6: exact original text back, with attribute quoting that keeps restored tokens intact."""

from __future__ import annotations

import pytest

from emailexport.transforms.markers import marker
from emailexport.transforms.protect import protect
from emailexport.transforms.restore import restore_placeholders

SINGLE_AND_DOUBLE = """{{ ${first_name} | default: "l'ami" }}"""


@pytest.mark.parametrize("quote", ['"', "'"])
def test_renderer_token_takes_the_quote_that_keeps_the_value_well_formed(quote: str) -> None:
    protected = protect(f"<img alt={quote}Hi {marker(0)}{quote}>", ['{{ x | default: "there" }}'])
    requoted = protected.html.replace("'", '"')  # what a serializer does
    assert restore_placeholders(requoted, protected) == """<img alt='Hi {{ x | default: "there" }}'>"""


@pytest.mark.parametrize("quote", ['"', "'"])
def test_typed_esp_syntax_gets_the_authors_quote_back(quote: str) -> None:
    syntax = '%%=RedirectTo(Concat("https://x.com/?id=", @id))=%%'
    protected = protect(f"<a href={quote}{syntax}{quote}>x</a>", [])
    requoted = protected.html.replace("'", '"')
    assert restore_placeholders(requoted, protected) == f"<a href={quote}{syntax}{quote}>x</a>"


def test_unquoted_source_value_gets_a_quote_the_token_does_not_contain() -> None:
    protected = protect(f"<img alt={marker(0)}>", ['{{ x | default: "there" }}'])
    assert protected.html == "<img alt=eex=0=eex>"
    assert restore_placeholders('<img alt="eex=0=eex">', protected) == """<img alt='{{ x | default: "there" }}'>"""


def test_token_with_both_quote_types_restored_exactly() -> None:
    protected = protect(f'<a title="{marker(0)}" href="https://x.com/?n={marker(0)}">x</a>', [SINGLE_AND_DOUBLE])
    restored = restore_placeholders(protected.html, protected)
    assert restored == f'<a title="{SINGLE_AND_DOUBLE}" href="https://x.com/?n={SINGLE_AND_DOUBLE}">x</a>'


def test_attribute_name_placeholder_restored_in_serialized_form() -> None:
    protected = protect(f"<td {marker(0)}>x</td>", ["{% if x %}bgcolor='red'{% endif %}"])
    assert restore_placeholders('<td eex-0="">x</td>', protected) == "<td {% if x %}bgcolor='red'{% endif %}>x</td>"


def test_source_doctype_restored_over_the_serializers() -> None:
    doctype = '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/x.dtd">'
    protected = protect(f"{doctype}<html></html>", [])
    assert restore_placeholders("<!doctype html><html></html>", protected) == f"{doctype}<html></html>"


def test_restored_tokens_are_not_rescanned() -> None:
    tokens = [f"contains a marker-like {marker(1)}", "second"]
    protected = protect(f"<p>{marker(0)}</p>", tokens)
    assert restore_placeholders(protected.html, protected) == f"<p>{tokens[0]}</p>"
