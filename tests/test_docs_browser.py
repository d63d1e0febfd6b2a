"""A real browser (Debian's headless Chromium, driven by Playwright) uses /docs on the local stack.

It signs in through the Authorize dialog with a password, creates a contact from the page
and sees 201. The screenshot is kept in test-artifacts/. Chromium comes from the system
package manager: `make test` installs Debian's where it can (devtools/prereqs.py). Without
it the test skips with the reason, or fails under REQUIRE_BROWSER=1 (CI sets it).
"""

from __future__ import annotations

import json

import pytest
import requests
from playwright.sync_api import ConsoleMessage, sync_playwright

from devtools.prereqs import CHROMIUM
from tests.conftest import ROOT
from tests.stack import Stack
from tests.system import system_tool

# No background networking: the machine has no internet, and the page must not need it.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def chromium() -> str:
    return system_tool(CHROMIUM)


@pytest.fixture
def docs_stack(shared_stack: Stack) -> Stack:
    return shared_stack


def test_authorize_with_password_and_create_a_contact(chromium: str, docs_stack: Stack) -> None:
    api = docs_stack.base + "/api/v1"
    user = {"username": "browser_user", "email": "b@example.com", "password": "browser password"}
    requests.post(api + "/auth/register", json=user, timeout=10).raise_for_status()
    ARTIFACTS.mkdir(exist_ok=True)
    console: list[ConsoleMessage] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.on("console", lambda message: console.append(message))
            page.goto(docs_stack.base + "/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)

            page.click("button.authorize")
            page.fill("#oauth_username", "browser_user")
            page.fill("#oauth_password", "browser password")
            page.click(".auth-container button.authorize >> nth=0")
            page.locator(".auth-container button", has_text="Logout").first.wait_for(timeout=15_000)
            page.click("button.btn-done >> nth=0")

            operation = page.locator("#operations-contacts-createContact")
            operation.locator(".opblock-summary-control").click()
            contact = json.dumps({"first_name": "Grace", "last_name": "Hopper"})
            operation.locator("textarea.body-param__text").fill(contact)
            operation.locator("button.execute").click()
            status = operation.locator(".live-responses-table tbody .response-col_status").first
            status.wait_for(timeout=15_000)
            operation.locator(".live-responses-table").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "docs-create-contact.png"))
            assert status.inner_text().strip() == "201"

            # Authorization persists across a reload (persistAuthorization).
            page.reload()
            page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
            assert page.locator("button.authorize.locked").count() == 1
        finally:
            browser.close()

    refused = [m.text for m in console if "Content Security Policy" in m.text or "Refused to" in m.text]
    assert refused == []
    token = requests.post(api + "/auth/token", data={"username": "browser_user", "password": "browser password"},
                          timeout=10).json()["access_token"]  # fmt: skip
    contacts = requests.get(api + "/contacts", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert [c["first_name"] for c in contacts["items"]] == ["Grace"]
