"""The safe fetcher against a real HTTP server on loopback, with failure injection."""

from __future__ import annotations

import threading
import time

import pytest

from emailexport.errors import TerminalError, TransientError
from emailexport.images.fetch import ImageFetcher, display_url, refusal, sniff_image_type
from emailexport.images.settings import ImageSettings
from tests.images.servers import ImageServer, png_bytes


def _fetcher(**overrides) -> ImageFetcher:
    return ImageFetcher(ImageSettings(**overrides))


def test_an_image_is_fetched_and_verified(images: ImageServer):
    fetched = _fetcher().fetch("img-1", images.url("/img/a.png"))
    assert fetched.data == png_bytes("a.png") and fetched.content_type == "image/png" and fetched.extension == "png"
    assert len(fetched.sha256) == 64 and images.hits["/img/a.png"] == 1


def test_a_500_then_200_is_retried_and_succeeds(images: ImageServer):
    fetched = _fetcher().fetch("img-1", images.url("/flaky/b.png"))
    assert fetched.data == png_bytes("b.png") and images.hits["/flaky/b.png"] == 2


def test_a_429_waits_for_retry_after(images: ImageServer):
    started = time.monotonic()
    _fetcher().fetch("img-1", images.url("/throttle/c.png"))
    assert images.hits["/throttle/c.png"] == 2 and time.monotonic() - started >= 1.0


def test_always_500_gives_up_naming_the_image(images: ImageServer):
    with pytest.raises(TransientError) as info:
        _fetcher().fetch("img-down", images.url("/down/d.png?signature=SECRET"))
    message = str(info.value)
    assert message.startswith(f"image img-down ({images.url('/down/d.png')}): HTTP 500 (gave up after 2 attempts)")
    assert "SECRET" not in message and images.hits["/down/d.png?signature=SECRET"] == 2


def test_a_response_slower_than_the_timeout_fails(images: ImageServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EMAILEXPORT_IMAGES_TIMEOUT_SECONDS", "0.5")
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"image s \(.*/slow/s.png\): timed out after 0.5 s"):
        _fetcher().fetch("s", images.url("/slow/s.png"))
    assert time.monotonic() - started < 1.8  # two attempts of 0.5 s, not two of 2 s


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/big/e.png", "more than the 100,000 byte limit"),
        ("/page/f.png", "served as text/html, not an image"),
        ("/fakepng/g.png", "served as image/png, but the content is not a PNG, JPEG, GIF or WebP image"),
        ("/svg/h.svg", "SVG images are not supported"),
        ("/nothing/i.png", "HTTP 404"),
    ],
)
def test_bad_responses_fail_at_once_with_a_clear_error(images: ImageServer, path: str, message: str):
    with pytest.raises(TerminalError) as info:
        _fetcher().fetch("img-x", images.url(path))
    assert str(info.value).startswith(f"image img-x ({images.url(path)}): ") and message in str(info.value)
    assert images.hits[path] == 1  # not retried


def test_a_redirect_is_followed_and_checked(images: ImageServer):
    assert _fetcher().fetch("r", images.url("/hop/k.png")).data == png_bytes("k.png")


def test_redirects_have_a_hop_limit(images: ImageServer):
    with pytest.raises(TerminalError, match=r"image j \(.*\): more than 3 redirect\(s\)"):
        _fetcher().fetch("j", images.url("/loop/j.png"))
    assert images.hits["/loop/j.png"] == 4  # the request and 3 hops, then it stops


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/to-loopback/l.png", "redirect to http://127.0.0.1:{port}/img/l.png: refused: 127.0.0.1 resolves to "
                               "127.0.0.1, a loopback address"),
        ("/to-metadata/m.png", "redirect to http://169.254.169.254/latest/meta-data/: refused: 169.254.169.254 "
                               "resolves to 169.254.169.254, a cloud metadata address"),
    ],
)
def test_redirects_to_loopback_or_metadata_are_refused(images: ImageServer, path: str, message: str):
    with pytest.raises(TerminalError) as info:
        _fetcher().fetch("img-r", images.url(path))
    assert message.format(port=images.port) in str(info.value)
    assert images.hits[f"/img/{path.rsplit('/', 1)[1]}"] == 0  # the loopback target was never requested


def test_loopback_is_refused_unless_allow_listed(images: ImageServer):
    with pytest.raises(TerminalError, match=r"a loopback address .*EMAILEXPORT_IMAGES_ALLOWED_HOSTS"):
        ImageFetcher(ImageSettings(allowed_hosts=[])).fetch("n", images.url("/img/n.png"))
    by_port = ImageSettings(allowed_hosts=f"127.0.0.1:{images.port}")
    assert ImageFetcher(by_port).fetch("n", images.url("/img/n.png", host="127.0.0.1")).content_type == "image/png"
    with pytest.raises(TerminalError, match="refused"):
        ImageFetcher(ImageSettings(allowed_hosts=["127.0.0.1:1"])).fetch("n", images.url("/img/n.png", "127.0.0.1"))
    assert images.hits["/img/n.png"] == 1


def test_metadata_addresses_are_refused_even_when_allow_listed():
    fetcher = ImageFetcher(ImageSettings(allowed_hosts=["meta.test"]), resolver=lambda host, port: ["169.254.169.254"])
    with pytest.raises(TerminalError, match="a cloud metadata address"):
        fetcher.fetch("meta", "http://meta.test/latest/meta-data/")


def test_the_connection_is_pinned_to_the_checked_address(images: ImageServer):
    """`pinned.test` exists only in this resolver: the request reaches the server, so httpx did
    not resolve the name again (a rebinding DNS answer would not be used either)."""
    resolved: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    fetcher = ImageFetcher(ImageSettings(allowed_hosts=["pinned.test"]), resolver=resolver)
    assert fetcher.fetch("p", f"http://pinned.test:{images.port}/img/p.png").data == png_bytes("p.png")
    assert resolved == ["pinned.test"] and images.hits["/img/p.png"] == 1


@pytest.mark.parametrize("url", ["ftp://localhost/x.png", "file:///etc/passwd", "data:image/png;base64,AAAA",
                                 "http:///nohost.png"])
def test_only_http_urls_are_fetched(url: str):
    with pytest.raises(TerminalError, match="only http"):
        _fetcher().fetch("u", url)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"), ("::1", "a loopback address"), ("10.1.2.3", "a private address"),
        ("192.168.0.1", "a private address"), ("172.16.0.1", "a private address"),
        ("169.254.1.1", "a link-local address"), ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"), ("0.0.0.0", "an unspecified address"), ("::", "an unspecified address"),
        ("240.0.0.1", "a private address"), ("100.64.0.1", "not a public address"),
        ("169.254.169.254", "a cloud metadata address"), ("fd00:ec2::254", "a cloud metadata address"),
        ("::ffff:127.0.0.1", "a loopback address"), ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("fc00::1", "a private address"), ("93.184.216.34", None), ("2606:4700::1111", None),
    ],
)
def test_address_classes(address: str, reason: str | None):
    assert refusal(address) == reason


def test_fetches_at_once_are_bounded(images: ImageServer):
    fetcher = _fetcher(max_concurrent_fetches=2)
    threads = [threading.Thread(target=fetcher.fetch, args=(f"h{i}", images.url(f"/hold/h{i}.png"))) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(images.hits.values()) == 6 and images.max_in_flight == 2


def test_helpers():
    assert display_url("https://user:pw@cdn.example.com:8443/a/b.png?sig=1#x") == "https://cdn.example.com:8443/a/b.png"
    assert sniff_image_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_image_type(b"GIF89a...") == "image/gif"
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image_type(b"<svg") is None
