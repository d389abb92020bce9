"""Helpers for dashboard tests: log in through the form, read the numbers back out of SVG."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from tests.conftest import ADMIN_KEY

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def login(client: TestClient, key: str = ADMIN_KEY) -> str:
    """Log in through the form; returns the session's CSRF token."""
    form = client.get("/ui/login")
    assert form.status_code == 200
    done = client.post(
        "/ui/login",
        data={"key": key, "csrf_token": csrf_token(form.text), "next": "/ui/"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    page = client.get("/ui/")
    assert page.status_code == 200
    return csrf_token(page.text)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    plot: dict[str, str] = field(default_factory=dict)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def num(self, name: str) -> float | None:
        raw = self.attrs[f"data-{name}"]
        return None if raw == "" else float(raw)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._svg: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self._svg.append(values)
        self.elements.append(Element(tag, values, self._svg[-1] if self._svg else {}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.elements.append(Element(tag, values, self._svg[-1] if self._svg else {}))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self._svg:
            self._svg.pop()


def elements(html: str) -> list[Element]:
    parser = _Collector()
    parser.feed(html)
    return parser.elements


def plotted(html: str, plot: str, cls: str, **plot_attrs: str) -> list[Element]:
    """Elements of class ``cls`` inside ``<svg data-plot=plot>`` (matching ``data-*`` attrs)."""
    found = []
    for el in elements(html):
        if el.plot.get("data-plot") != plot or cls not in el.classes:
            continue
        if all(el.plot.get(f"data-{k}") == v for k, v in plot_attrs.items()):
            found.append(el)
    return found
