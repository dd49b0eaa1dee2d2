"""Step 4: each link tracking rule."""

from __future__ import annotations

import pytest

from emailexport.transforms.markers import marker
from emailexport.transforms.protect import protect
from emailexport.transforms.tracking import LinkTracking, add_link_tracking

UTM = LinkTracking({"utm_source": "newsletter", "utm_campaign": "spring sale"})
ADDED = "utm_source=newsletter&amp;utm_campaign=spring%20sale"


def _a(href: str) -> str:
    return f'<a href="{href}" class="btn">x</a>'


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("https://x.com", f"https://x.com?{ADDED}"),
        ("http://x.com/p", f"http://x.com/p?{ADDED}"),
        ("HTTPS://X.COM/p", f"HTTPS://X.COM/p?{ADDED}"),
        ("https://x.com/p?a=1", f"https://x.com/p?a=1&amp;{ADDED}"),
        ("https://x.com/p?a=1&amp;b=%2F", f"https://x.com/p?a=1&amp;b=%2F&amp;{ADDED}"),
        ("https://x.com/p?", f"https://x.com/p?{ADDED}"),
        ("https://x.com/p#section", f"https://x.com/p?{ADDED}#section"),
        ("https://x.com/p?a=1#s?x=1", f"https://x.com/p?a=1&amp;{ADDED}#s?x=1"),
        ("https://x.com/p?utm_source=partner", "https://x.com/p?utm_source=partner&amp;utm_campaign=spring%20sale"),
    ],
)
def test_http_links_get_the_missing_parameters(href: str, expected: str) -> None:
    assert add_link_tracking(_a(href), UTM) == _a(expected)


@pytest.mark.parametrize(
    "href",
    [
        "mailto:a@example.com",
        "tel:+33123456789",
        "#top",
        "/relative/path",
        "page.html",
        "",
        "{{ unsubscribe_url }}",
        "*|UNSUB|*",
        "%%=RedirectTo(@url)=%%",
        f"{marker(0)}",
        f"{marker(0)}?x=1",
        "https://x.com/p?utm_source=a&amp;utm_campaign=b",
    ],
)
def test_links_left_alone(href: str) -> None:
    assert add_link_tracking(_a(href), UTM) == _a(href)


def test_skip_urls_are_left_alone() -> None:
    tracking = LinkTracking({"utm_source": "n"}, skip_urls=frozenset({"https://x.com/?a=1&b=2"}))
    html = _a("https://x.com/?a=1&amp;b=2") + _a("https://y.com/")
    assert add_link_tracking(html, tracking) == _a("https://x.com/?a=1&amp;b=2") + _a("https://y.com/?utm_source=n")


def test_skip_urls_match_the_renderers_form_through_placeholders() -> None:
    href = f"https://x.com/?u={marker(0)}"
    protected = protect(_a(href), ["{{ id }}"])
    tracking = LinkTracking({"utm_source": "n"}, skip_urls=frozenset({href}))
    assert add_link_tracking(protected.html, tracking, protected.source_text) == protected.html


def test_per_url_parameters_win_over_the_profile() -> None:
    tracking = LinkTracking(
        {"utm_source": "n", "utm_medium": "email"},
        per_url_parameters={"https://x.com/": {"utm_source": "hero", "ref": "a/b"}},
    )
    html = _a("https://x.com/") + _a("https://y.com/")
    assert add_link_tracking(html, tracking) == _a(
        "https://x.com/?utm_source=hero&amp;utm_medium=email&amp;ref=a%2Fb"
    ) + _a("https://y.com/?utm_source=n&amp;utm_medium=email")


def test_token_inside_the_query_is_kept_and_tracked() -> None:
    protected = protect(_a(f"https://x.com/?u={marker(0)}"), ["{{ ${user_id} }}"])
    tracked = add_link_tracking(protected.html, UTM, protected.source_text)
    assert tracked == _a(f"https://x.com/?u=eex=0=eex&amp;{ADDED}")


def test_tracking_twice_is_a_no_op() -> None:
    once = add_link_tracking(_a("https://x.com/p?a=1#f"), UTM)
    assert add_link_tracking(once, UTM) == once


def test_vml_button_href_tracked_like_its_link() -> None:
    html = '<v:roundrect href="https://x.com/b" arcsize="10%"><w:anchorlock/></v:roundrect>'
    assert (
        add_link_tracking(html, UTM)
        == f'<v:roundrect href="https://x.com/b?{ADDED}" arcsize="10%"><w:anchorlock/></v:roundrect>'
    )


def test_only_link_hrefs_are_touched() -> None:
    html = '<link rel="stylesheet" href="https://fonts.example.com/css"><base href="https://x.com/">'
    assert add_link_tracking(html, UTM) == html
