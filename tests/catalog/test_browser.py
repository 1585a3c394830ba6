"""The built catalog in a real browser: Debian's headless Chromium, driven by Playwright.

A visitor goes index → filter → search → model page → version → copies a pull command; the page
raises no console error and requests nothing from elsewhere; it reads without JavaScript, with the
keyboard, on a phone and in dark mode; a hostile card runs nothing. Screenshots at desktop and
phone widths are kept in build/test-artifacts/catalog/ (or $REGISTRY_TEST_ARTIFACTS/catalog/).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from catalog.browser import INSTALL_HINT, chromium_args, chromium_path, serve_site
from factories import REPO_ROOT, example_card, mlp_onnx, publish_version
from registry.catalog.site import build_catalog

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def artifacts_dir() -> Path:
    base = Path(os.environ.get("REGISTRY_TEST_ARTIFACTS") or REPO_ROOT / "build" / "test-artifacts")
    folder = base / "catalog"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser_site(published_registry, tmp_path):
    """A built catalog of: digits (2 versions), wine (another task and project), old (withdrawn),
    evil (a hostile card)."""
    reg = published_registry
    reg.add_model(
        "wine",
        mlp_onnx(7),
        card=example_card("wine", size=len(mlp_onnx(7)))
        .replace("task: classification", "task: regression")
        .replace("project: demo", "project: cellar")
        + "description: Wine quality from chemistry.\nowners: ['@cellar/team']\n",
    )
    publish_version(
        reg, "wine", "2.0.0", notes="wine first release", date="2026-03-01T10:00:00+00:00"
    )
    reg.add_model("old", mlp_onnx(8))
    publish_version(reg, "old", "0.1.0", notes="old release", date="2025-06-01T10:00:00+00:00")
    card = reg.root / "models" / "old" / "model.yaml"
    card.write_text(card.read_text().replace("status: published", "status: offline"))
    reg.add_model(
        "evil",
        mlp_onnx(9),
        card=example_card("evil", size=len(mlp_onnx(9)))
        + (
            "description: |\n  <script>window.pwned = 1; alert('card')</script> <img src=x "
            "onerror=\"alert('img')\">\n"
            "  [click me](javascript:alert('link'))\n"
        ),
    )
    publish_version(
        reg,
        "evil",
        "1.0.0",
        notes="<script>alert('notes')</script>",
        date="2026-01-15T10:00:00+00:00",
    )
    site = tmp_path / "site"
    build_catalog(reg.root, site)
    return reg, site


@pytest.fixture
def chromium():
    path = chromium_path()
    if path is None:
        print(f"\nthe browser test needs Debian's Chromium: {INSTALL_HINT}")
        pytest.skip(f"Chromium is not installed; install it with: {INSTALL_HINT}")
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        print(f"\nthe browser test needs the playwright package: {INSTALL_HINT}")
        pytest.skip(f"the playwright package is not installed; install it with: {INSTALL_HINT}")
    from playwright.sync_api import sync_playwright

    with (
        sync_playwright() as p,
        tempfile.TemporaryDirectory(prefix="catalog-chromium-") as profiles,
    ):
        opened = []

        def open_context(name: str, **options):
            ctx = p.chromium.launch_persistent_context(
                str(Path(profiles) / name),
                executable_path=path,
                headless=True,
                args=chromium_args(),
                **{"viewport": DESKTOP, **options},
            )
            opened.append(ctx)
            return ctx

        yield open_context
        for ctx in opened:
            ctx.close()


class Visit:
    """A page with everything a test must see stay clean: console errors, page errors, dialogs and
    requests that leave the site."""

    def __init__(self, ctx, base: str):
        self.page = ctx.pages[0] if ctx.pages else ctx.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.foreign: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "response",
            lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on(
            "request", lambda r: None if r.url.startswith(base) else self.foreign.append(r.url)
        )

    def clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.dialogs == [], self.dialogs
        assert self.foreign == [], self.foreign


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def visible_models(page) -> list[str]:
    return page.locator("#rows tr:visible a.model-link").all_inner_texts()


def test_a_visitor_finds_a_model_and_copies_its_pull_command(browser_site, chromium):
    reg, site = browser_site
    shots = artifacts_dir()
    with serve_site(site) as base:
        ctx = chromium("desktop")
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=base.rstrip("/"))
        visit = Visit(ctx, base)
        page = visit.page
        page.goto(base)

        # the index: published models, the withdrawn one hidden by default
        assert sorted(visible_models(page)) == ["digits", "evil", "wine"]
        assert page.locator("#filters").is_visible()
        page.screenshot(path=str(shots / "index-desktop.png"), full_page=True)

        # filter by task, then search
        count = page.locator("#result-count")
        page.select_option("#f-task", "regression")
        expect(count).to_have_text(re.compile(r"^1 model\b"))
        assert visible_models(page) == ["wine"]
        page.select_option("#f-task", "")
        page.fill("#q", "handwritten")
        expect(count).to_have_text(re.compile(r"^1 model\b"))
        assert visible_models(page) == ["digits"]
        page.fill("#q", "")
        page.check("#show-withdrawn")
        expect(count).to_have_text(re.compile(r"^4 models\b"))
        assert "old" in visible_models(page)
        assert page.locator("#rows tr.withdrawn .badge.withdrawn").count() == 1
        page.select_option("#sort", "date")
        expect(page.locator("#rows a.model-link").first).to_have_text("wine")
        page.uncheck("#show-withdrawn")
        page.fill("#q", "digits")
        expect(count).to_have_text(re.compile(r"^1 model\b"))

        # the model page, then one version, then copy its pull command
        page.click("#rows a.model-link")
        page.wait_for_url(f"{base}models/digits/")
        assert page.locator("h1").inner_text() == "digits"
        assert page.locator("svg.chart").count() == 1
        assert page.locator("figure.graph img").evaluate(
            "img => img.complete && img.naturalWidth > 0"
        )
        page.screenshot(path=str(shots / "model-desktop.png"), full_page=True)
        print(f"\nscreenshots: {shots}")
        page.click("a.version-link >> text=1.0.0")
        page.wait_for_url(f"{base}models/digits/#v1.0.0")
        version = page.locator("section#v1\\.0\\.0")
        assert version.locator("details").evaluate("d => d.open")
        assert version.get_by_text("first release").is_visible()
        command = version.locator(".command").first
        assert command.locator("code").inner_text().startswith("registry pull digits@1.0.0 --repo ")
        command.get_by_role("button", name="Copy the command: registry pull digits@1.0.0").click()
        expect(version.locator(".copy").first).to_have_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == command.locator("code").inner_text()
        visit.clean()


def test_the_site_reads_without_javascript_with_the_keyboard_on_a_phone_and_in_the_dark(
    browser_site, chromium
):
    reg, site = browser_site
    shots = artifacts_dir()
    with serve_site(site) as base:
        plain = Visit(chromium("no-js", java_script_enabled=False), base)
        plain.page.goto(base)
        assert sorted(visible_models(plain.page)) == ["digits", "evil", "wine"]
        assert not plain.page.locator("#filters").is_visible()  # nothing that would not work
        plain.page.goto(f"{base}models/digits/")
        assert plain.page.get_by_text("better weights").is_visible()
        assert plain.page.locator("svg.chart").is_visible()  # charts are drawn at build time
        plain.clean()

        visit = Visit(chromium("phone", viewport=PHONE, is_mobile=True, has_touch=True), base)
        page = visit.page
        page.goto(base)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(shots / "index-phone.png"), full_page=True)
        page.goto(f"{base}models/digits/")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(shots / "model-phone.png"), full_page=True)
        page.emulate_media(color_scheme="dark")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)", background
        page.screenshot(path=str(shots / "model-phone-dark.png"), full_page=True)
        visit.clean()
    print(f"\nscreenshots: {shots}")


@pytest.fixture
def training_site(published_registry, tmp_path):
    """A built catalog with the digits dataset, the digits-cnn training task (one instance's
    results) and the model it registered."""
    from catalog.training_files import add_training
    from registry.api.catalog import CatalogBuildRequest, build

    add_training(published_registry)
    site = tmp_path / "site"
    build(CatalogBuildRequest(root=published_registry.root, output=site))
    return site


def test_a_visitor_goes_from_a_training_task_to_its_dataset_and_model(training_site, chromium):
    shots = artifacts_dir()
    with serve_site(training_site) as base:
        visit = Visit(chromium("training"), base)
        page = visit.page
        page.goto(base)
        page.get_by_role("navigation", name="Site").get_by_role("link", name="Training").click()
        page.wait_for_url(f"{base}training/")
        page.get_by_role("link", name="digits-cnn").first.click()
        page.wait_for_url(f"{base}training/digits-cnn/")
        assert page.locator("h1").inner_text() == "digits-cnn"
        structure = page.locator("figure.graph img")
        assert structure.evaluate("img => img.complete && img.naturalWidth > 0")
        assert page.get_by_text("0.9712 (done, best)").is_visible()
        page.screenshot(path=str(shots / "task-desktop.png"), full_page=True)

        page.get_by_role("link", name="digits", exact=True).first.click()
        page.wait_for_url(f"{base}datasets/digits/")
        assert page.locator("h1").inner_text() == "digits"
        assert page.get_by_text("CC-BY-4.0").is_visible()
        page.get_by_role("link", name="digits-cnn").last.click()
        page.wait_for_url(f"{base}models/digits-cnn/")
        lineage = page.locator("section[aria-labelledby=lineage]")
        assert lineage.get_by_text("Made by the training task").is_visible()
        lineage.get_by_role("link", name="digits-cnn").click()
        page.wait_for_url(f"{base}training/digits-cnn/")
        visit.clean()


def test_a_hostile_card_runs_nothing_in_the_browser(browser_site, chromium):
    reg, site = browser_site
    with serve_site(site) as base:
        visit = Visit(chromium("hostile"), base)
        page = visit.page
        page.goto(f"{base}models/evil/")
        page.wait_for_load_state("load")
        assert page.evaluate("window.pwned === undefined")
        assert page.get_by_text(
            "<script>window.pwned = 1;", exact=False
        ).is_visible()  # shown as text
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("a[href^='javascript']").count() == 0
        page.click("a.version-link >> text=1.0.0")
        assert page.get_by_text("<script>alert('notes')</script>").is_visible()
        visit.clean()
