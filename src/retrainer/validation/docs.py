"""Great Expectations Data Docs: the suite and recent validation results as a static site.

The site must work where it is read: production machines often have no internet, and GE's page
templates load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from public CDNs and show a
logo from GE's S3 bucket whose URL carries the build time and the data context's id (a beacon). So
after GE builds the site, the copies of those files vendored in `data_docs_assets/` (see its README)
are put into the site and every page is pointed at them.

The pages also say what retrainer decided, which GE's own "Status" does not: GE fails a validation on
any failed expectation, retrainer rejects a batch only on a failed *critical* one. GE's suite page
shows each expectation's severity in its notes (GE's own rendering, see `with_severity_shown`). GE
has no working place for it on a validation page, so the batch's verdict, PASSED or REJECTED, with
each failed expectation and its severity, is a banner right after <body> of its page, and a table of
the batches heads the index; both are computed with the pipeline's own rule (`runner.read_result`).
"""

from __future__ import annotations

import copy
import html
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import pandas as pd

from retrainer.validation.runner import ValidationOutcome, quiet_context, read_result

log = logging.getLogger(__name__)

# The vendored files (package data), and where they go in a site.
ASSETS = Path(__file__).with_name("data_docs_assets")
_VENDOR = "static/vendor"

# Every CDN URL of GE 1.24's page templates (page.j2, page_minimal.j2, index_page.j2,
# js_script_imports.j2) -> its copy under data_docs_assets/. A GE upgrade that changes one is left
# pointing at the CDN, logged, and caught by tests/unit/test_data_docs.py.
CDN_COPIES: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap-4.3.1/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap-4.3.1/js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js-1.12.9/umd/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table-1.19.1/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table-1.19.1/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js",
    # The index asks for the minified CSS, the other pages for the plain one: the same file.
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker-1.9.0/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker-1.9.0/js/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome-free-6.6.0/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark-1.1.0/css/bootstrap-prefers-dark.min.css",
    # GE asks for the newest of a major version; these are what the CDN served when vendored.
    "https://cdn.jsdelivr.net/npm/vega@5": "vega-5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite-5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed-6.29.0/vega-embed.min.js",
}

# GE's logo bucket: the navbar <img> (with ?d=<time>&dataContextId=<id>) and a dark-mode CSS background.
_GE_WEB_ASSETS = re.compile(r"https?://great-expectations-web-assets\.[^\s\"')]*")
_GE_WEB_ASSETS_CSS = re.compile(r"url\(\s*(['\"]?)https?://great-expectations-web-assets\.[^)]*\)")
# The logo GE itself copies into every site.
_LOCAL_LOGO = "static/images/logo-long.png"

_TAG = re.compile(r"<(script|link|img)\b[^>]*>", re.IGNORECASE)
_URL_ATTRIBUTE = re.compile(r"(\s(?:src|href)\s*=\s*)([\"'])(.*?)\2", re.IGNORECASE | re.DOTALL)
# Subresource-integrity and CORS attributes: with `crossorigin`, Chromium fetches a file:// script
# as a CORS request and blocks it; the local copies are ours, no integrity check is needed.
_SRI_ATTRIBUTES = re.compile(r"\s+(?:integrity|crossorigin)(?:\s*=\s*([\"']).*?\1)?", re.IGNORECASE | re.DOTALL)
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BANNER_ID = "retrainer-status"
_BANNER = re.compile(rf'\n?<div id="{_BANNER_ID}".*?<!-- /{_BANNER_ID} -->', re.DOTALL)


@dataclass
class BatchStatus:
    """A batch of the site as retrainer judges it: passed, or rejected by its critical failures."""

    batch: str
    passed: bool
    # (GE severity, reason) of each failed expectation, critical ones first.
    failed: list[tuple[str, str]] = field(default_factory=list)
    ge_success: bool = True
    page: Path | None = None

    @property
    def critical(self) -> list[str]:
        """The reasons the batch is rejected."""
        return [reason for severity, reason in self.failed if severity == "critical"]

    @property
    def lesser(self) -> int:
        """How many expectations of another severity failed (warnings: the batch goes on)."""
        return sum(severity != "critical" for severity, _ in self.failed)


def build_data_docs(suite_json: dict[str, Any], batches: Sequence[tuple[str, pd.DataFrame]], out: Path) -> Path:
    """Render the suite, and its results on `batches`, with GE's own site builder; returns index.html.

    The site is self-contained (no file loaded from the internet) and each batch's page, and the
    index, say whether the batch PASSED or was REJECTED by the suite's critical expectations.
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    statuses: list[BatchStatus] = []
    # A throwaway file context: Data Docs need GE's stores, the site itself goes to `out`.
    with tempfile.TemporaryDirectory(prefix="retrainer-gx-") as project:
        context = quiet_context(Path(project))
        site = "retrainer"
        context.add_data_docs_site(
            site_name=site,
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out)},
            },
        )
        suite = context.suites.add(gx.ExpectationSuite(**with_severity_shown(suite_json)))
        asset = context.data_sources.add_pandas("retrainer").add_dataframe_asset("batch")
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name="batch", data=asset.add_batch_definition_whole_dataframe("whole batch"),
                                    suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(name="retrainer-docs", validation_definitions=[definition],
                          actions=[UpdateDataDocsAction(name="update docs", site_names=[site])])
        )
        for name, frame in batches:
            run = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=name))
            for identifier, result in run.run_results.items():
                # The pipeline's verdict on this result (critical failures reject; the rest warn), judged
                # on the suite as written, not on the copy annotated for display.
                outcome = read_result(result, suite_json, [], set(frame.columns))
                statuses.append(BatchStatus(name, outcome.valid, _failed(result, outcome), bool(result.success),
                                            _page_of(context, site, identifier)))
        context.build_data_docs(site_names=[site])
    make_self_contained(out, statuses)
    return out / "index.html"


def with_severity_shown(suite_json: dict[str, Any]) -> dict[str, Any]:
    """A copy of the suite whose expectations carry their severity where GE's Data Docs show it.

    GE's suite page shows an expectation's `notes` (behind its comment icon), not its meta or its
    severity: the severity leads the notes, followed by the note retrainer's drafted suites keep in
    meta["notes"]; the suite's own meta["notes"] becomes its `notes`, which GE shows in the
    overview. What is validated is unchanged. (GE's other knob, the meta-properties column of the
    validation tables, fails in GE 1.24: it puts `meta_properties_to_render` into the kwargs, which
    the expectation classes reject, and the pages are not written.)
    """
    suite = copy.deepcopy(suite_json)
    suite_notes = _note_list((suite.get("meta") or {}).get("notes"))
    if suite_notes and not suite.get("notes"):
        suite["notes"] = suite_notes
    expectations = []
    for expectation in suite.get("expectations") or []:
        if not isinstance(expectation, dict):
            expectations.append(expectation)  # GE reports a malformed suite in its own words
            continue
        severity = str(expectation.get("severity") or "critical")  # GE's default severity
        item = dict(expectation)
        existing = _note_list(item.get("notes")) or _note_list((item.get("meta") or {}).get("notes"))
        item["notes"] = [f"Severity: **{severity}**", *existing]
        expectations.append(item)
    suite["expectations"] = expectations
    return suite


def _note_list(value: Any) -> list[str]:
    """Notes as GE 1.x takes them (a list of markdown strings); GE 0.x's {"format", "content"} unwrapped."""
    if isinstance(value, dict):
        value = value.get("content")
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(note) for note in value]
    return []


def _failed(result: Any, outcome: ValidationOutcome) -> list[tuple[str, str]]:
    """The batch's failed expectations as (GE severity, the pipeline's one-line reason).

    `read_result` splits its reasons into critical failures and warnings (every other severity),
    keeping GE's order; each warning gets back its own severity (warning or info) from the result's
    non-critical failures in the same order. When their counts differ (read_result passes over the
    checks of a column the suite lets be absent) the warnings keep the pipeline's word.
    """
    lesser = [str(getattr(item.expectation_config.severity, "value", item.expectation_config.severity)).lower()
              for item in result.results if not item.success and item.expectation_config is not None]
    lesser = [s for s in lesser if s != "critical"]
    if len(lesser) != len(outcome.warnings):
        lesser = ["warning"] * len(outcome.warnings)
    return [("critical", reason) for reason in outcome.failures] + list(zip(lesser, outcome.warnings, strict=True))


def _page_of(context: Any, site: str, identifier: Any) -> Path | None:
    """The file of a validation result's page in the site, as GE names it."""
    for entry in context.get_docs_sites_urls(resource_identifier=identifier, site_name=site, only_if_exists=False):
        url = entry.get("site_url") or ""
        if url.startswith("file://"):
            return Path(url2pathname(urlsplit(url).path))
    return None


def make_self_contained(site: Path, statuses: Sequence[BatchStatus] = ()) -> None:
    """Put the vendored assets into `site` and point every page at them; add the status banners.

    Idempotent: a page rewritten before (an earlier build into the same folder) stays as it is.
    """
    site = site.resolve()
    shutil.copytree(ASSETS, site / _VENDOR, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.py", "*.pyc"))
    by_page = {status.page.resolve(): status for status in statuses if status.page is not None}
    for page in sorted(site.rglob("*.html")):
        if (site / _VENDOR) in page.parents:
            continue
        text = page.read_text(encoding="utf-8")
        new = _localise(text, page, site)
        status = by_page.get(page.resolve())
        if status is not None:
            new = _with_banner(new, _page_banner(status))
        elif page == site / "index.html" and statuses:
            new = _with_banner(new, _index_banner(statuses, site))
        if new != text:
            page.write_text(new, encoding="utf-8")
    # GE's stylesheets in the site are not linked by its pages (it inlines them), but carry the same
    # bucket URL: drop it there too, so nothing in the site points at it.
    for sheet in (site / "static" / "styles").glob("*.css"):
        text = sheet.read_text(encoding="utf-8")
        new = _GE_WEB_ASSETS_CSS.sub("none", text)
        if new != text:
            sheet.write_text(new, encoding="utf-8")


def _relative(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, page.parent)).as_posix()


def _localise(text: str, page: Path, site: Path) -> str:
    """The page with its CDN resources pointed at the vendored copies and GE's bucket left out."""

    def tag(match: re.Match[str]) -> str:
        element = match.group(0)
        localised = False

        def attribute(found: re.Match[str]) -> str:
            nonlocal localised
            url = found.group(3).strip()
            if url in CDN_COPIES:
                localised = True
                local = _relative(site / _VENDOR / CDN_COPIES[url], page)
                return f"{found.group(1)}{found.group(2)}{local}{found.group(2)}"
            if _GE_WEB_ASSETS.match(url):
                return f"{found.group(1)}{found.group(2)}{_relative(site / _LOCAL_LOGO, page)}{found.group(2)}"
            fixed = _fixed_local(url, page, site)
            if fixed is not None:
                return f"{found.group(1)}{found.group(2)}{fixed}{found.group(2)}"
            if urlsplit(url).scheme in ("http", "https") or url.startswith("//"):
                log.warning("Data Docs page %s still loads %s from the internet (no vendored copy)", page, url)
            return found.group(0)

        element = _URL_ATTRIBUTE.sub(attribute, element)
        if localised:
            element = _SRI_ATTRIBUTES.sub("", element)
        return element

    text = _TAG.sub(tag, text)
    return _GE_WEB_ASSETS_CSS.sub("none", text)  # the dark-mode navbar background in the inlined CSS


def _fixed_local(url: str, page: Path, site: Path) -> str | None:
    """A relative URL into the site's static/ folder that misses its file, corrected; else None.

    GE's favicon link on validation pages climbs one folder too few (favicon.j2 counts 3 levels
    for pages 4 deep).
    """
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path or url.startswith(("#", "/")):
        return None
    path = unquote(parts.path)
    if (page.parent / path).exists() or "static/" not in path:
        return None
    target = site / path[path.index("static/"):]
    return _relative(target, page) if target.exists() else None


def _with_banner(text: str, banner: str) -> str:
    """`banner` right after <body> (replacing one an earlier build put there)."""
    text = _BANNER.sub("", text)
    body = _BODY.search(text)
    if body is None:
        return text
    return text[: body.end()] + "\n" + banner + text[body.end():]


def _verdict(status: BatchStatus) -> tuple[str, str]:
    """The word for a batch and its Bootstrap colour."""
    if not status.passed:
        return "REJECTED", "danger"
    return "PASSED", "warning" if status.lesser else "success"


_BADGE = {"critical": "danger", "warning": "warning", "info": "info"}


def _reasons(status: BatchStatus) -> str:
    items = [f'<li><span class="badge badge-{_BADGE.get(severity, "secondary")}">{html.escape(severity)}</span> '
             f"{html.escape(reason)}</li>" for severity, reason in status.failed]
    return f'<ul class="mb-1">{"".join(items)}</ul>' if items else ""


def _page_banner(status: BatchStatus) -> str:
    word, colour = _verdict(status)
    if not status.passed:
        why = f"{len(status.critical)} expectation(s) of severity <b>critical</b> failed: the suite rejects the batch."
    elif status.lesser:
        why = f"No critical expectation failed; {status.lesser} of lesser severity did (warnings: the batch is accepted)."
    else:
        why = "Every expectation passed."
    note = ""
    if status.ge_success != status.passed or status.lesser:
        note = ('<p class="small mb-0">Great Expectations\' own "Status" below counts every expectation, '
                "warnings included; retrainer rejects a batch only on critical ones. Each expectation's "
                "severity is also in its notes on the suite's page.</p>")
    return (f'<div id="{_BANNER_ID}" class="alert alert-{colour} rounded-0 mb-0 px-5" role="status">'
            f'<h4 class="alert-heading mb-1">{word} &mdash; batch <code>{html.escape(status.batch)}</code></h4>'
            f'<p class="mb-1">{why}</p>{_reasons(status)}{note}</div><!-- /{_BANNER_ID} -->')


def _index_banner(statuses: Sequence[BatchStatus], site: Path) -> str:
    rows = []
    for status in statuses:
        word, colour = _verdict(status)
        name = html.escape(status.batch)
        if status.page is not None and status.page.exists():
            name = f'<a href="{html.escape(_relative(status.page, site / "index.html"))}">{name}</a>'
        failures = html.escape("; ".join(status.critical)) or "&mdash;"
        rows.append(f'<tr><td><span class="badge badge-{colour}">{word}</span></td><td>{name}</td>'
                    f"<td>{failures}</td><td>{status.lesser}</td></tr>")
    rejected = sum(not s.passed for s in statuses)
    colour = "danger" if rejected else "success"
    return (f'<div id="{_BANNER_ID}" class="alert alert-{colour} rounded-0 mb-0 px-5" role="status">'
            f'<h4 class="alert-heading mb-1">{rejected} of {len(statuses)} batch(es) REJECTED by the suite\'s '
            "critical expectations</h4>"
            '<table class="table table-sm mb-0"><thead><tr><th>Status</th><th>Batch</th>'
            "<th>Critical failures</th><th>Warnings</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table></div><!-- /{_BANNER_ID} -->')
