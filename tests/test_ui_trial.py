"""The web page, as a newcomer trial found it wanting (2026-12-07): a list that stopped at its
limit with no way on, a stopped server that failed silently, one long word or imported metadata
that pushed every button off the screen, "null" in notices, empty searches that hid why, a page
any site could frame, and "Forget all" that purged more than it listed. Real server subprocess,
real headless Chromium (the helpers and the browser fixture are tests/test_ui.py's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By

from memorch import Memory, MemoryConfig

from .test_ui import browser, click, layout_faults, open_page, start_ui, stop, submit, tab, ui_env, wait_for, wait_until

__all__ = ["browser"]  # the fixture, used by name below

LONG_WORD = "https://example.com/" + "a1b2c3d4" * 85  # ~700 characters without a space
USER = "erin"


@pytest.fixture(scope="module")
def erin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("ui-trial") / "data"
    with Memory(MemoryConfig(data_dir=data, graph="off")) as m:
        m.add(f"My bookmark is {LONG_WORD}", user_id=USER)
        m.add("I keep bees", user_id=USER, metadata={"imported_from": "text", "file": "x" * 120, "line": 7})
        for n in range(10):
            m.add(f"Numbered fact {n} about the allotment", user_id=USER)
    return data


@pytest.fixture(scope="module")
def erin_url(erin: Path) -> Iterator[str]:
    proc, url = start_ui(ui_env(erin, MEMORCH_USER_ID=USER))
    yield url
    stop(proc)


def test_a_long_word_and_metadata_stay_on_the_screen(browser, erin_url: str) -> None:
    open_page(browser, erin_url, USER)
    wait_until(browser, lambda: len(browser.find_elements("css selector", "#list-results tr[data-id]")) == 12)
    scroll_width, inner_width, outside = layout_faults(browser)
    assert scroll_width <= inner_width and outside == [], (scroll_width, inner_width, outside)


def test_the_list_goes_on_past_its_limit(browser, erin_url: str) -> None:
    open_page(browser, erin_url, USER)
    submit(browser, "#list-form", {"#list-limit": "5"})
    wait_for(browser, "#list-results button.more", text="5 shown")
    rows = lambda: len(browser.find_elements("css selector", "#list-results tr[data-id]"))  # noqa: E731
    assert rows() == 5
    click(browser, "#list-results button.more")
    wait_for(browser, "#list-results button.more", text="10 shown")
    click(browser, "#list-results button.more")
    wait_for(browser, "#list-results p.empty", text="all 12 shown")
    script = "return [...document.querySelectorAll('#list-results tr[data-id]')].map(r => r.dataset.id)"
    ids = browser.execute_script(script)
    assert len(ids) == len(set(ids)) == 12  # every memory once


def test_an_empty_search_says_why_and_notices_hold_no_null(browser, erin_url: str) -> None:
    open_page(browser, erin_url, USER)
    tab(browser, "search")
    submit(browser, "#search-form", {"#search-q": "allotment", "#search-threshold": "0.95"})  # the input's step: 0.05
    empty = wait_for(browser, "#search-results p.empty").text
    assert "no memory scored 0.95 or more" in empty and "below it" in empty, empty
    # An empty box: the page's words, and the last search's answer gone from under the error.
    submit(browser, "#search-form", {"#search-q": " "})
    error = wait_for(browser, "#error", text="EMPTY_TEXT").text
    assert "type what to look for in the Search box" in error, error
    assert browser.find_elements(By.CSS_SELECTOR, "#search-results p.empty") == []
    tab(browser, "list")
    browser.execute_script("window.confirm = () => true")
    click(browser, "#list-results tr[data-id] button.delete")
    notice = wait_for(browser, "#notice", text="Deleted").text
    assert "null" not in notice, notice
    tab(browser, "history")  # a notice is about the view it was said in
    assert not browser.find_element(By.CSS_SELECTOR, "#notice").is_displayed()


def test_forget_all_says_how_many_go(browser, erin_url: str) -> None:
    open_page(browser, erin_url, USER)
    browser.execute_script("window.prompt = (text) => { window.asked = text; return null; }")
    click(browser, "#list-form button.forget-all")
    wait_until(browser, lambda: browser.execute_script("return window.asked") is not None)
    asked = browser.execute_script("return window.asked")
    live = len(httpx.get(erin_url + f"/api/memories?user_id={USER}&limit=1000").json()["results"])
    assert f"Forget all {live} memories of {USER}" in asked and "in every project" in asked, asked


def test_no_other_site_may_frame_the_page(erin_url: str) -> None:
    for path in ("/", "/api/scopes"):
        headers = httpx.get(erin_url + path).headers
        assert headers["x-frame-options"] == "DENY"
        assert headers["content-security-policy"] == "frame-ancestors 'none'"


def test_a_stopped_server_is_said_not_silent(browser, erin: Path) -> None:
    proc, url = start_ui(ui_env(erin, MEMORCH_USER_ID=USER))
    try:
        open_page(browser, url, USER)
    finally:
        stop(proc)
    tab(browser, "search")
    submit(browser, "#search-form", {"#search-q": "bees"})
    error = wait_for(browser, "#error", text="NO_ANSWER").text
    assert "did not answer" in error and "null" not in error, error


def test_it_opens_on_a_user_with_memories_when_the_default_has_none(browser, erin: Path) -> None:
    proc, url = start_ui(ui_env(erin, MEMORCH_USER_ID="default"))
    try:
        browser.get(url + "/")
        wait_for(browser, f'#stats[data-user="{USER}"]')
    finally:
        stop(proc)


def test_the_editor_saves_with_ctrl_enter_and_cancels_with_escape(browser, erin_url: str) -> None:
    from selenium.webdriver.common.keys import Keys

    open_page(browser, erin_url, USER)
    click(browser, "#list-results tr[data-id] button.edit")
    box = wait_for(browser, "#list-results textarea.edit")
    box.send_keys(" (edited)", Keys.ESCAPE)
    wait_until(browser, lambda: not browser.find_elements("css selector", "#list-results textarea.edit"))
    click(browser, "#list-results tr[data-id] button.edit")
    box = wait_for(browser, "#list-results textarea.edit")
    box.send_keys(" (edited)", Keys.CONTROL, Keys.ENTER)
    wait_for(browser, "#list-results tr[data-id] td.text", text="(edited)")


def test_a_wrong_token_is_said_so(tmp_path: Path) -> None:
    proc, url = start_ui(ui_env(tmp_path / "data", MEMORCH_AUTH_TOKEN="s3cret"))
    try:
        asked = httpx.get(url + "/")
        wrong = httpx.get(url + "/?token=nope")
    finally:
        stop(proc)
    assert asked.status_code == wrong.status_code == 401
    assert "not the one" not in asked.text and "That token is not the one in MEMORCH_AUTH_TOKEN" in wrong.text
