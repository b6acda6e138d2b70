"""Data Docs (retrainer.validation.docs): a site that works with no internet and says which batches the suite
rejects. Real Great Expectations builds the site; the checks read every page of it and, where Chromium is
installed, open one with the network cut off."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd
import pytest

from retrainer.validation.docs import ASSETS, CDN_COPIES, build_data_docs, make_self_contained

SUITE = {
    "name": "sensors",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "reading"},
         "meta": {"notes": "a reading is required"}, "severity": "critical"},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "load", "min_value": 0, "max_value": 1},
         "meta": {}, "severity": "warning"},
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "load", "max_value": 1}, "severity": "info"},
    ],
    "meta": {"notes": "Drafted for the test"},
}
BATCHES = [
    ("clean", pd.DataFrame({"reading": [1.0, 2.0, 3.0, 4.0], "load": [0.1, 0.2, 0.3, 0.4]})),
    # Only the warning fails: GE calls it Failed, the suite accepts it.
    ("noisy", pd.DataFrame({"reading": [1.0, 2.0, 3.0, 4.0], "load": [5.0, 6.0, 7.0, 8.0]})),
    ("broken", pd.DataFrame({"reading": [1.0, None, 3.0, 4.0], "load": [5.0, 6.0, 7.0, 8.0]})),
]
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")\s]+)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    index = build_data_docs(SUITE, BATCHES, out)
    assert index == out.resolve() / "index.html"
    return out.resolve()


class Resources(HTMLParser):
    """What a page makes a browser load: src/href of script, link, img (and other embedding tags), and the
    CSS of <style> elements and style attributes."""

    EMBEDDING = {"script": "src", "img": "src", "link": "href", "source": "src", "iframe": "src", "embed": "src",
                 "video": "src", "audio": "src", "object": "data"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str]] = []
        self.css: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        attribute = self.EMBEDDING.get(tag)
        if attribute and values.get(attribute):
            self.urls.append((tag, values[attribute].strip()))
        if tag == "img" and values.get("srcset"):
            self.urls.append((tag, values["srcset"].strip()))
        if values.get("style"):
            self.css.append(values["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.css.append(data)


def resources(page: Path) -> Resources:
    parser = Resources()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def external(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("http", "https") or url.startswith("//")


def pages(site: Path) -> list[Path]:
    found = sorted(site.rglob("*.html"))
    assert len(found) >= 2 + len(BATCHES)  # index, the suite's page, a page per batch
    return found


def batch_page(site: Path, batch: str) -> Path:
    (page,) = (site / "validations" / SUITE["name"] / batch).rglob("*.html")
    return page


def text_of(page: Path) -> str:
    """The page as a person reads it (tags and scripts out, whitespace folded)."""
    markup = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(encoding="utf-8"), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


def test_no_page_loads_anything_from_the_internet(site: Path) -> None:
    """No page, at any depth, has a script, stylesheet, image or CSS url() on another host (GE's hyperlinks to
    its documentation may stay), and nothing in the site carries GE's logo beacon."""
    for page in pages(site):
        found = resources(page)
        assert found.urls, page
        assert [u for u in found.urls if external(u[1])] == [], page
        css_urls = [u for css in found.css for u in CSS_URL.findall(css)]
        assert [u for u in css_urls if external(u)] == [], page
    for file in site.rglob("*"):
        if file.suffix in (".html", ".css", ".js"):
            text = file.read_text(encoding="utf-8", errors="replace")
            assert "great-expectations-web-assets" not in text, file
            assert "dataContextId" not in text, file
    for sheet in site.rglob("*.css"):
        assert [u for u in CSS_URL.findall(sheet.read_text(encoding="utf-8")) if external(u)] == [], sheet


def test_every_local_resource_is_a_file_of_the_site(site: Path) -> None:
    """Each src/href of the pages' scripts, stylesheets and images, and each url() of the stylesheets (Font
    Awesome's webfonts), points at a file that is there, inside the site."""
    checked = 0
    for page in pages(site):
        for tag, url in resources(page).urls:
            if url.startswith(("data:", "#")):
                continue
            target = (page.parent / unquote(urlsplit(url).path)).resolve()
            assert target.is_file(), f"{page}: <{tag}> {url}"
            assert target.is_relative_to(site), f"{page}: <{tag}> {url}"
            checked += 1
    # Every page loads each vendored file (two of GE's URLs are one file), its favicon and the logo.
    assert checked == (len(set(CDN_COPIES.values())) + 2) * len(pages(site))
    for sheet in (site / "static" / "vendor").rglob("*.css"):
        for url in CSS_URL.findall(sheet.read_text(encoding="utf-8")):
            if not url.startswith("data:"):
                assert (sheet.parent / urlsplit(url).path).resolve().is_file(), f"{sheet}: {url}"
    licences = {p.parent.name for p in (site / "static" / "vendor").glob("*/LICENSE*")}
    assert licences == {p.name for p in ASSETS.iterdir() if p.is_dir()}  # the licences travel with the files


def test_the_batch_critical_expectations_reject_says_rejected_and_why(site: Path) -> None:
    page = batch_page(site, "broken")
    markup = page.read_text(encoding="utf-8")
    assert re.search(r'<body[^>]*>\s*<div id="retrainer-status"', markup)  # at the top, before GE's navbar
    text = text_of(page)
    assert "REJECTED — batch broken" in text
    assert "critical expect_column_values_to_not_be_null(reading): 25.0% unexpected" in text
    assert "warning expect_column_mean_to_be_between(load): observed 6.5 not in [0, 1]" in text
    assert "info expect_column_max_to_be_between(load): observed 8, above the maximum 1" in text
    assert "PASSED" not in text


def test_a_batch_failing_only_a_warning_passes_and_one_failing_nothing_passes(site: Path) -> None:
    noisy = text_of(batch_page(site, "noisy"))
    assert "PASSED — batch noisy" in noisy
    assert "warning expect_column_mean_to_be_between(load)" in noisy
    assert "info expect_column_max_to_be_between(load)" in noisy
    assert "REJECTED" not in noisy
    assert "Status: Failed" in noisy  # GE's own word, which the banner explains
    clean = text_of(batch_page(site, "clean"))
    assert "PASSED — batch clean" in clean
    assert "Every expectation passed." in clean
    assert "REJECTED" not in clean


def test_the_index_lists_each_batch_passed_or_rejected_with_a_link_to_its_page(site: Path) -> None:
    markup = (site / "index.html").read_text(encoding="utf-8")
    banner = markup[markup.index('<div id="retrainer-status"'):markup.index("<!-- /retrainer-status -->")]
    assert "1 of 3 batch(es) REJECTED" in banner
    rows = re.findall(r'<span class="badge[^"]*">(\w+)</span></td><td><a href="([^"]+)">([^<]+)</a>', banner)
    assert {name: word for word, _, name in rows} == {"clean": "PASSED", "noisy": "PASSED", "broken": "REJECTED"}
    for _, href, name in rows:
        assert (site / href).resolve() == batch_page(site, name).resolve()
    assert "expect_column_values_to_not_be_null(reading)" in banner


def test_the_suite_page_shows_each_expectation_severity_in_its_notes(site: Path) -> None:
    """GE's own rendering of an expectation's notes carries the severity (and the note the suite keeps)."""
    markup = (site / "expectations" / f"{SUITE['name']}.html").read_text(encoding="utf-8")
    assert "Severity: <strong>critical</strong>" in markup
    assert "Severity: <strong>warning</strong>" in markup
    assert "Severity: <strong>info</strong>" in markup
    assert "a reading is required" in markup
    assert "Drafted for the test" in markup


def test_rewriting_a_site_again_changes_nothing(site: Path) -> None:
    before = {p: p.read_text(encoding="utf-8") for p in pages(site)}
    make_self_contained(site)
    assert {p: p.read_text(encoding="utf-8") for p in pages(site)} == before


def test_the_vendored_files_are_the_ones_ge_pages_ask_for() -> None:
    """Every CDN script or stylesheet in the installed GE's page templates has a vendored copy (a GE upgrade
    that changes one fails here), and where GE's template pins a hash, the copy has it."""
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    asked = {}
    for template in templates.glob("*.j2"):
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", template.read_text(encoding="utf-8")):
            url = re.search(r'(?:src|href)="([^"]+)"', tag)
            if url and external(url.group(1)):
                integrity = re.search(r'integrity="([^"]+)"', tag)
                asked[url.group(1)] = integrity.group(1) if integrity else None
    assert len(asked) >= 14
    assert sorted(set(asked) - set(CDN_COPIES)) == []
    pinned = {url: sri for url, sri in asked.items() if sri}
    assert len(pinned) >= 2
    for url, sri in pinned.items():
        algorithm, digest = sri.split("-", 1)
        data = (ASSETS / CDN_COPIES[url]).read_bytes()
        assert base64.b64encode(hashlib.new(algorithm, data).digest()).decode() == digest, url
    readme = (ASSETS / "README.md").read_text(encoding="utf-8")
    for folder in (p for p in ASSETS.iterdir() if p.is_dir()):
        assert list(folder.glob("LICENSE*")), folder
        assert f"`{folder.name}/`" in readme, folder
    for copy in CDN_COPIES.values():
        assert (ASSETS / copy).is_file(), copy


PROBE = """
<div id="probe-hidden" class="d-none"></div><div id="probe-chart"></div><pre id="probe-result">pending</pre>
<script>
window.addEventListener("load", async () => {
  const found = {
    bootstrapCss: getComputedStyle(document.getElementById("probe-hidden")).display,
    jquery: typeof window.jQuery,
    bootstrapJs: typeof jQuery.fn.modal,
    popper: typeof window.Popper,
    bootstrapTable: typeof jQuery.fn.bootstrapTable,
    datepicker: typeof jQuery.fn.datepicker,
  };
  await document.fonts.ready;
  found.fontAwesome = document.fonts.check('900 16px "Font Awesome 6 Free"');
  try {
    await vegaEmbed("#probe-chart", {data: {values: [{x: "a", y: 1}, {x: "b", y: 2}]}, mark: "bar",
      encoding: {x: {field: "x", type: "nominal"}, y: {field: "y", type: "quantitative"}}},
      {mode: "vega-lite", renderer: "svg", actions: false});
    found.vega = document.querySelectorAll("#probe-chart svg .mark-rect path").length;
  } catch (error) { found.vega = String(error); }
  document.getElementById("probe-result").textContent = JSON.stringify(found);
});
</script>
"""


def test_a_page_renders_styled_in_chromium_with_no_network(site: Path, tmp_path: Path) -> None:
    """The rejected batch's page in a real headless Chromium that cannot resolve any host: bootstrap-table
    (with jQuery) has turned GE's tables into its own, Bootstrap's CSS and JavaScript, Popper, the datepicker,
    Font Awesome's font and Vega (a chart drawn by vega-embed) are all loaded from the site's own files."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    original = batch_page(copy, "broken")
    probe = original.with_name("probe.html")
    markup = original.read_text(encoding="utf-8")
    probe.write_text(markup.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
         "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         probe.as_uri()], capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert dom.count('class="bootstrap-table bootstrap4"') >= 2
    assert re.search(r'class="bootstrap-table bootstrap4".*?values must never be null', dom, flags=re.S)
    assert "REJECTED" in dom
    found = json.loads(html.unescape(re.search(r'<pre id="probe-result">(.*?)</pre>', dom, flags=re.S).group(1)))
    assert found == {"bootstrapCss": "none", "jquery": "function", "bootstrapJs": "function", "popper": "function",
                     "bootstrapTable": "function", "datepicker": "function", "fontAwesome": True, "vega": 2}
