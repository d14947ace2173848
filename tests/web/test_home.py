"""`/`: what this server is and where to go, in the reader's language; the demo link leads to
another origin of the same server when the config allows it."""

from __future__ import annotations

import aiohttp

from crm.config import parse_settings
from tests.conftest import make_settings
from tests.web.console.conftest import running
from web.home import demo_url


def test_the_demo_is_shown_across_origins_where_the_config_allows() -> None:
    def settings(public: str, origins: list[str]) -> object:
        return parse_settings({"http": {"public_url": public},
                               "webchat": {"enabled": True, "allowed_origins": origins}})

    assert demo_url(settings("http://127.0.0.1:8080", ["http://localhost:8080"])) == \
        "http://localhost:8080/webchat/demo"  # type: ignore[arg-type]
    assert demo_url(settings("http://localhost:9000/", ["http://127.0.0.1:9000"])) == \
        "http://127.0.0.1:9000/webchat/demo"  # type: ignore[arg-type]
    # Not allowed there, or not a loopback name: the service's own origin.
    assert demo_url(settings("http://127.0.0.1:8080", [])) == \
        "http://127.0.0.1:8080/webchat/demo"  # type: ignore[arg-type]
    assert demo_url(settings("https://crm.example.com", ["https://shop.example.com"])) == \
        "https://crm.example.com/webchat/demo"  # type: ignore[arg-type]


async def test_the_start_page(db: str) -> None:
    for webchat, language in ((True, "en"), (False, "ru")):
        settings = make_settings(db, webchat={"enabled": webchat,
                                              "allowed_origins": ["http://localhost:8080"]})
        async with running(settings) as app, aiohttp.ClientSession() as http, http.get(
                f"{app.base}/", headers={"Accept-Language": f"{language},en;q=0.5"}) as r:
            page = await r.text()
            assert r.status == 200 and "script" not in r.headers["Content-Security-Policy"]
        assert 'id="console-link"' in page
        if webchat:
            assert 'id="demo-link" href="http://localhost:8080/webchat/demo"' in page
            assert "The demo shop" in page and "console.first_admin" in page
        else:
            assert 'id="demo-link"' not in page
            assert "Чат на сайте выключен" in page


async def test_the_console_typed_without_its_slash_is_found(db: str) -> None:
    async with running(make_settings(db)) as app, aiohttp.ClientSession() as http:
        async with http.get(f"{app.base}/console", allow_redirects=False) as r:
            assert r.status == 308 and r.headers["Location"] == "/console/"
        async with http.get(f"{app.base}/console") as r:  # on to the sign-in page
            assert r.status == 200 and r.url.path == "/console/sign-in"
