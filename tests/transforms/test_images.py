"""Step 3: every kind of image reference is rewritten, nothing else changes."""

from __future__ import annotations

import pytest

from emailexport.transforms.images import rewrite_image_urls

URLS = {"https://cdn.example.com/a.png": "images/a.png", "b.jpg": "https://new.example.com/b.jpg"}


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<img src="https://cdn.example.com/a.png" alt="A">', '<img src="images/a.png" alt="A">'),
        ("<img src='b.jpg'/>", "<img src='https://new.example.com/b.jpg'/>"),
        ("<img src=b.jpg>", '<img src="https://new.example.com/b.jpg">'),
        (
            '<img srcset="b.jpg 1x, https://cdn.example.com/a.png 2x,other.png 3x">',
            '<img srcset="https://new.example.com/b.jpg 1x, images/a.png 2x,other.png 3x">',
        ),
        ('<td background="b.jpg" bgcolor="#fff">', '<td background="https://new.example.com/b.jpg" bgcolor="#fff">'),
        (
            '<div style="background: url(&quot;b.jpg&quot;) no-repeat">',
            '<div style="background: url(&quot;https://new.example.com/b.jpg&quot;) no-repeat">',
        ),
        (
            "<div style=\"background-image:url('b.jpg')\">",
            "<div style=\"background-image:url('https://new.example.com/b.jpg')\">",
        ),
        (
            '<v:fill type="tile" src="b.jpg" color="#fff"/>',
            '<v:fill type="tile" src="https://new.example.com/b.jpg" color="#fff"/>',
        ),
        ('<v:image src="b.jpg"/>', '<v:image src="https://new.example.com/b.jpg"/>'),
        (
            "<style>.h{background:url(b.jpg)} @media (x){.h{background:url('b.jpg')}}</style>",
            "<style>.h{background:url(https://new.example.com/b.jpg)} @media (x){.h{background:url('https://new.example.com/b.jpg')}}</style>",
        ),
    ],
)
def test_image_references_rewritten(html: str, expected: str) -> None:
    assert rewrite_image_urls(html, URLS) == expected


@pytest.mark.parametrize(
    "html",
    [
        '<a href="b.jpg">a link to an image is not an image</a>',
        '<img src="b.jpg.old">',
        '<img  data-x = "1"   src = "other.png" >',
        "<!-- <img src=b.jpg> -->",
        "<p>b.jpg</p>",
    ],
)
def test_other_text_left_byte_identical(html: str) -> None:
    assert rewrite_image_urls(html, URLS) == html


def test_empty_mapping_leaves_document_alone() -> None:
    assert rewrite_image_urls('<img src="b.jpg">', {}) == '<img src="b.jpg">'
