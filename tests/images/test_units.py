"""Collecting image references, naming zip entries and CDN keys, resolving credentials."""

from __future__ import annotations

import re

import pytest

from emailexport.images.collect import collect_image_urls
from emailexport.images.naming import cdn_key, safe_filename, zip_entry
from emailexport.secrets import CredentialsError, resolve_credentials


def test_every_kind_of_image_reference_is_collected():
    html = """<html><head><style>.a{background:url("s.png")} @media (x){.b{background:url(m.png)}}</style></head>
    <body background=b.png><img src="a.png?x=1&amp;y=2" srcset="a1.png 1x, a2.png 2x,a3.png 3x">
    <div style="background-image:url('st.png')"></div><input type="image" src="in.png">
    <!--[if gte mso 9]><v:rect><v:fill type="tile" src="vml.png"/><v:image src="vi.png"/></v:rect><![endif]-->
    <!-- <img src=commented-out.png> --><a href="link.png">x</a><img src="a.png"></body></html>"""
    assert collect_image_urls(html) == ["s.png", "m.png", "b.png", "a.png?x=1&y=2", "a1.png", "a2.png", "a3.png",
                                        "st.png", "in.png", "vml.png", "vi.png", "a.png"]


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("../../x.png", "x.png"), ("/etc/passwd", "passwd.png"), ("C:\\Users\\me\\fr banner.png", "fr-banner.png"),
        ("..\\..\\evil.png", "evil.png"), ("...", "image.png"), ("", "image.png"), ("photo.JPEG", "photo.jpg"),
        ("héro ünïcode.png", "hero-unicode.png"), ("a/../../b.gif", "b.gif"), ("noext", "noext.png"),
        ("x.png\x00.exe", "x.png-.exe.png"), (".hidden.png", "hidden.png"),
    ],
)
def test_a_filename_becomes_one_safe_path_segment(filename: str, expected: str):
    extension = "jpg" if "JPEG" in filename else "gif" if filename.endswith(".gif") else "png"
    name = safe_filename(filename, extension)
    assert name == expected
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) and ".." not in name


def test_zip_entries_and_cdn_keys_come_from_the_content_hash():
    sha = "ab" * 32
    assert zip_entry(sha, "../../x.png", "png") == f"images/{sha[:16]}-x.png"
    assert cdn_key("email-images/", sha, "webp") == f"email-images/{sha}.webp"


def test_env_credentials_are_read_and_errors_never_quote_the_value():
    assert resolve_credentials("env:CDN", {"CDN": '{"key": "k", "secret": "s"}'}) == {"key": "k", "secret": "s"}
    with pytest.raises(CredentialsError, match=r"^credentials variable MISSING is not set$"):
        resolve_credentials("env:MISSING", {})
    with pytest.raises(CredentialsError) as info:
        resolve_credentials("env:CDN", {"CDN": "{not json: hunter2}"})
    assert "hunter2" not in str(info.value) and "CDN" in str(info.value)
    with pytest.raises(CredentialsError, match="must hold a JSON object of strings"):
        resolve_credentials("env:CDN", {"CDN": '{"key": 1}'})
    with pytest.raises(CredentialsError, match="must be env:VAR or block:NAME"):
        resolve_credentials("vault:x", {})


@pytest.mark.usefixtures("prefect_harness")
def test_block_credentials_come_from_a_prefect_secret_block():
    from prefect.blocks.system import Secret

    Secret(value='{"key": "k", "secret": "from-block"}').save("cdn-test-credentials", overwrite=True)
    assert resolve_credentials("block:cdn-test-credentials") == {"key": "k", "secret": "from-block"}
    assert resolve_credentials("block:secret/cdn-test-credentials")["secret"] == "from-block"
    with pytest.raises(CredentialsError, match="Secret block 'no-such-block' does not exist"):
        resolve_credentials("block:no-such-block")
