"""`memorch ui`: a real server subprocess on 127.0.0.1 over a seeded data directory, driven by a real
headless Chromium (Debian's chromium + chromium-driver, through selenium).

Without Chromium the browser tests skip, unless MEMORCH_REQUIRE_BROWSER=1 (CI) makes that a failure.
The HTTP-level tests (token, Host, loopback refusal) need no browser.

Screenshots (1280 and 390 px wide) go to each test's tmp dir; with MEMORCH_UI_SCREENSHOTS=1 the ones
docs/web-ui.md shows are also written to server/serve/ui_static/screenshots/ (not on every run, as
each run's PNGs differ in their times and scores' last digits).
The browser runs in America/New_York (TZ), so the page's local times are checkable.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memorch import Memory, MemoryConfig

from .test_purge import occurrences, token

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WINDOW = (1280, 800)
PHONE = (390, 844)
ZONE = "America/New_York"
DOC_SHOTS = Path(__file__).parent.parent / "server" / "serve" / "ui_static" / "screenshots"
REFRESH_DOC_SHOTS = os.environ.get("MEMORCH_UI_SCREENSHOTS") == "1"  # read here: conftest drops MEMORCH_*
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ui_env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORCH_")}
    return {**env, "MEMORCH_DATA_DIR": str(data), "MEMORCH_USER_ID": "alice", **extra}


def start_ui(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "memorch", "ui", "--port", str(port), *args]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"memorch ui exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            httpx.get(url + "/static/ui.css", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("memorch ui did not answer within 30 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def exported(text: str, relations: list[tuple[str, str, str]]) -> dict:
    """One `memorch export` line: a memory with relations (the graph without an LLM)."""
    now = "2025-01-02T03:04:05+00:00"
    return {
        "id": str(uuid.uuid4()),
        "memory": text,
        "user_id": "alice",
        "created_at": now,
        "relations": [
            {"source": s, "source_type": "person", "relationship": r, "destination": d, "destination_type": "thing"}
            for s, r, d in relations
        ],
        "history": [{"id": str(uuid.uuid4()), "event": "ADD", "new_memory": text, "created_at": now}],
    }


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    data = tmp_path_factory.mktemp("ui") / "data"
    with Memory(MemoryConfig(data_dir=data, graph="on", graph_flush_delay=0)) as m:
        peanuts = m.add("I am allergic to peanuts", user_id="alice", metadata={"category": "health"})
        m.add("I prefer window seats on long flights", user_id="alice", metadata={"category": "travel"})
        marta = m.add("My sister is called Marta", user_id="alice")["results"][0]["id"]
        m.add("Bob plays chess on Sundays", user_id="bob")
        m.import_memories(
            [
                exported("Alice lives in Lisbon", [("Alice", "lives_in", "Lisbon")]),
                exported("Alice works at Acme", [("Alice", "works_at", "Acme"), ("Acme", "based_in", "Porto")]),
            ]
        )
        diffed = m.add("I drink coffee every morning", user_id="alice")["results"][0]["id"]
        m.update(diffed, "I drink green tea every morning")
        gone = m.add("I used to live in Berlin", user_id="alice")["results"][0]["id"]
        m.delete(gone)
        # carol's memories are forgotten by test_forget_*: each says a word found nowhere else.
        secrets = [token() for _ in range(3)]
        carol = [
            m.add(f"My locker {i} code is {w}", user_id="carol")["results"][0]["id"] for i, w in enumerate(secrets)
        ]
        m.delete(carol[1])
        # dave's one memory expires (test_an_expiring_memory_shows_when).
        m.add("My passport renewal is due", user_id="dave", expires_at="30d")
        # erin's every memory was deleted (test_a_user_whose_memories_were_all_deleted_is_listed).
        erin = m.add("I collect stamps from Iceland", user_id="erin")["results"][0]["id"]
        m.delete_all(user_id="erin")
        m.flush_graph()
    return {
        "data": data,
        "peanuts": peanuts["results"][0]["id"],
        "diffed": diffed,
        "marta": marta,
        "gone": gone,
        "carol": carol,
        "secrets": secrets,
        "erin": erin,
    }


@pytest.fixture(scope="module")
def ui_url(seeded: dict) -> Iterator[str]:
    proc, url = start_ui(ui_env(seeded["data"]))
    # The server loads its embedding model on the first search: have that happen while Chromium starts.
    warm = threading.Thread(target=httpx.get, args=(url + "/api/search?q=warm&user_id=alice",), kwargs={"timeout": 60})
    warm.start()
    yield url
    warm.join()
    stop(proc)


@pytest.fixture(scope="module")
def locked_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server: empty data directory, a token (s3cret), the graph off."""
    data = tmp_path_factory.mktemp("locked") / "data"
    proc, url = start_ui(ui_env(data, MEMORCH_AUTH_TOKEN="s3cret", MEMORCH_GRAPH="off"))
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("MEMORCH_REQUIRE_BROWSER") == "1":
            pytest.fail("MEMORCH_REQUIRE_BROWSER=1 but chromium / chromedriver are not installed")
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors, e.g. a 404
    service = Service(CHROMEDRIVER, env={**os.environ, "TZ": ZONE})
    driver = webdriver.Chrome(options=options, service=service)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def wait_for(driver, css: str, timeout: float = 20, text: str | None = None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    if text is not None:
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    return wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def png_facts(png: bytes) -> tuple[int, int, int]:
    """Width, height and how many distinct byte values the decoded pixel rows hold."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    pos, idat = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        if kind == b"IDAT":
            idat += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def shoot(driver, path: Path, doc: bool = False) -> None:
    """A screenshot of the viewport to ``path`` (checked: the viewport's size, not blank); ``doc``:
    also to the screenshots docs/web-ui.md shows, when MEMORCH_UI_SCREENSHOTS=1."""
    png = driver.get_screenshot_as_png()
    path.write_bytes(png)
    if doc and REFRESH_DOC_SHOTS:
        (DOC_SHOTS / path.name).write_bytes(png)
    ratio, inner_w, inner_h = driver.execute_script(
        "return [window.devicePixelRatio, window.innerWidth, window.innerHeight]"
    )
    width, height, distinct = png_facts(png)
    assert (width, height) == (round(inner_w * ratio), round(inner_h * ratio)), path
    assert distinct > 30, f"{path} looks blank"  # a blank page decodes to a handful of byte values


def submit(driver, form: str, fields: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    for css, value in fields.items():
        box = driver.find_element(By.CSS_SELECTOR, css)
        box.clear()
        box.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, f"{form} button[type=submit]").click()


def ledger_ids(data: Path, user: str | None = None, deleted: bool = False) -> set[str]:
    """Ids of the live memories (of ``user``, or of everyone), or of the deleted ones (history only)."""
    with sqlite3.connect(f"file:{data / 'memorch.db'}?mode=ro", uri=True) as db:
        if deleted:
            sql = (
                "SELECT DISTINCT memory_id FROM history WHERE user_id = ?"
                " AND memory_id NOT IN (SELECT id FROM memories)"
            )
            return {row[0] for row in db.execute(sql, (user,))}
        if user is None:
            return {row[0] for row in db.execute("SELECT id FROM memories")}
        return {row[0] for row in db.execute("SELECT id FROM memories WHERE user_id = ?", (user,))}


def row_ids(driver, results: str) -> set[str]:
    """The ids of the rows shown in ``results``, read in one script (rows re-render as answers come)."""
    script = "return [...document.querySelectorAll(arguments[0])].map((r) => r.dataset.id)"
    return set(driver.execute_script(script, f"{results} tr[data-id]"))


def click(driver, css: str, timeout: float = 20) -> None:
    """Click ``css`` once it is shown; again if a re-render replaced it before the click landed."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(5):
        try:
            wait_for(driver, css, timeout).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError(f"{css} kept being replaced")


def wait_until(driver, condition, timeout: float = 20) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: condition())


def open_page(driver, url: str, user: str = "alice") -> None:
    """Load the page and wait until it shows ``user``'s list and counts (it loads them by itself)."""
    driver.get(url + "/")
    if user != "alice":
        wait_for(driver, f"#user option[value={user}]")
        select_user(driver, user)
    wait_for(driver, f'#stats[data-user="{user}"]')
    wait_for(driver, "#list-results table, #list-results .empty")


def select_user(driver, user: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.CSS_SELECTOR, "#user")).select_by_value(user)


def tab(driver, view: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f".tab[data-view={view}]").click()


def layout_faults(driver) -> tuple[int, int, list[str]]:
    """The document's scroll width, the window's inner width, and each shown tab or button that is
    not wholly inside the viewport horizontally."""
    return driver.execute_script(
        """
        const width = document.documentElement.clientWidth, bad = [];
        for (const b of document.querySelectorAll("button, .tab, input, select")) {
          const r = b.getBoundingClientRect();
          if (!r.width && !r.height) continue;  // not shown (another view's)
          if (r.left < 0 || r.right > width + 0.5)
            bad.push((b.textContent || b.id || b.name) + " " + Math.round(r.left) + ".." + Math.round(r.right));
        }
        return [document.documentElement.scrollWidth, window.innerWidth, bad];
        """
    )


def test_screenshots_of_every_view(ui_url: str, browser, seeded: dict, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, ui_url)
    wait_for(browser, "#user option[value=bob]")
    shoot(browser, tmp_path / "list.png")

    tab(browser, "search")
    submit(browser, "#search-form", {"#search-q": "what should I avoid eating?", "#search-threshold": "0"})
    first = wait_for(browser, "#search-results tr[data-id] td.score")
    assert 0 < float(first.text) <= 1
    assert (
        browser.find_element(By.CSS_SELECTOR, "#search-results tr[data-id]").get_attribute("data-id")
        == seeded["peanuts"]
    )
    browser.find_element(By.CSS_SELECTOR, "#search-explain").click()
    assert "vector" in wait_for(browser, "#search-results .explain").text
    shoot(browser, tmp_path / "search.png", doc=True)

    tab(browser, "list")
    submit(browser, "#list-form", {"#list-filters": '{"category": "travel"}'})
    wait_for(browser, "#list-results tr[data-id]", text="window seats")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#list-results tr[data-id]")) == 1

    submit(browser, "#list-form", {"#list-filters": "{not json"})
    wait_for(browser, "#error", text="INVALID_REQUEST")  # the API's error JSON, shown in the page
    assert "Suggestion" in browser.find_element(By.CSS_SELECTOR, "#error").text
    # No rows of the list before the bad filter under its error (a newcomer's trial).
    assert browser.find_elements(By.CSS_SELECTOR, "#list-results tr[data-id]") == []

    tab(browser, "deleted")
    wait_for(browser, f'#deleted-results tr[data-id="{seeded["gone"]}"]', text="Berlin")
    shoot(browser, tmp_path / "deleted.png", doc=True)

    tab(browser, "history")
    submit(browser, "#history-form", {"#history-id": seeded["diffed"]})
    wait_for(browser, "#history-results tr.event-update")
    assert browser.find_element(By.CSS_SELECTOR, "#history-results tr.event-update del").text == "coffee"
    assert "green" in browser.find_element(By.CSS_SELECTOR, "#history-results tr.event-update").text
    shoot(browser, tmp_path / "history.png", doc=True)

    tab(browser, "graph")
    submit(browser, "#graph-form", {"#graph-entity": "Alice"})
    wait_for(browser, "#graph-results tr.relation")
    triples = {
        tuple(td.text for td in row.find_elements(By.TAG_NAME, "td"))
        for row in browser.find_elements(By.CSS_SELECTOR, "#graph-results tr.relation")
    }
    assert {("Alice", "lives_in", "Lisbon"), ("Alice", "works_at", "Acme")} <= triples
    assert not browser.find_elements(By.CSS_SELECTOR, "#graph-results .graph-note")  # alice's graph has relations
    shoot(browser, tmp_path / "graph.png")


def test_opens_with_the_list_and_a_user_switch_drops_the_previous_rows(browser, ui_url: str, seeded: dict) -> None:
    from selenium.webdriver.common.by import By

    data = seeded["data"]
    open_page(browser, ui_url)  # no click: the list is there on open
    assert row_ids(browser, "#list-results") == ledger_ids(data, "alice")
    tab(browser, "search")
    submit(browser, "#search-form", {"#search-q": "flights", "#search-threshold": "0"})
    wait_for(browser, "#search-results tr[data-id]").find_element(By.CSS_SELECTOR, "button.history").click()
    wait_for(browser, "#history-results tr.event-add")
    tab(browser, "deleted")
    wait_for(browser, f'#deleted-results tr[data-id="{seeded["gone"]}"]')
    shown = ("#list-results", "#search-results", "#deleted-results", "#history-results")
    assert all(row_ids(browser, results) or results == "#history-results" for results in shown)

    # Every request of the page now takes 0.5 s longer, so what shows between the switch and
    # bob's answers is visible: the switch must empty every view and the counts at once.
    browser.execute_script(
        "const f = window.fetch; window.fetch = (...a) => new Promise((r) => setTimeout(r, 500)).then(() => f(...a));"
    )
    select_user(browser, "bob")
    assert browser.execute_script(
        "return [...document.querySelectorAll('.results, #stats')].map((e) => e.childElementCount)"
    ) == [0, 0, 0, 0, 0, 0]
    wait_for(browser, '#stats[data-user="bob"]')
    wait_until(browser, lambda: row_ids(browser, "#list-results") == ledger_ids(data, "bob"))
    wait_for(browser, "#deleted-results .empty", text="no deleted memories for bob")  # the view on show
    assert (
        row_ids(browser, "#search-results") == set()
        and browser.find_element(By.ID, "history-id").get_property("value") == ""
    )

    # alice, then bob before alice's answers came: they must not land in bob's page.
    select_user(browser, "alice")
    select_user(browser, "bob")
    wait_for(browser, '#stats[data-user="bob"]')
    time.sleep(0.7)  # alice's answers are in by now
    assert row_ids(browser, "#list-results") == ledger_ids(data, "bob")
    assert browser.find_element(By.CSS_SELECTOR, "#stats").get_attribute("data-user") == "bob"
    assert "no deleted memories for bob" in browser.find_element(By.CSS_SELECTOR, "#deleted-results").text


def test_header_counts_are_the_selected_users(browser, ui_url: str, seeded: dict) -> None:
    from selenium.webdriver.common.by import By

    data = seeded["data"]
    for user in ("alice", "bob"):
        open_page(browser, ui_url, user)
        stats = browser.find_element(By.CSS_SELECTOR, "#stats")
        assert stats.get_attribute("data-user") == user
        mine = len(ledger_ids(data, user))
        assert int(stats.get_attribute("data-memories")) == mine
        assert int(stats.get_attribute("data-deleted")) == len(ledger_ids(data, user, deleted=True))
        assert int(stats.get_attribute("data-changes")) == history_count(data, user)
        changes = history_count(data, user)
        assert f" · {changes} change{'' if changes == 1 else 's'} · " in stats.text
        assert mine < len(ledger_ids(data))  # not the store's total
        assert stats.text.startswith(f"{user}: {mine} memor")
        option = browser.find_element(By.CSS_SELECTOR, f"#user option[value={user}]")
        assert option.text == f"{user} ({mine})"


def test_a_user_whose_memories_were_all_deleted_is_listed(browser, ui_url: str, seeded: dict) -> None:
    """After delete_all a user held no memory, so the page did not list it: the one user whose
    Deleted view was needed could not be picked, and a page whose default user it was opened on
    another user's memories (a newcomer's trial)."""
    from selenium.webdriver.common.by import By

    scopes = httpx.get(ui_url + "/api/scopes").json()["scopes"]
    assert {"user_id": "erin", "memories": 0, "deleted": 1} in scopes
    assert scopes[-1]["user_id"] == "erin"  # after every user that holds memories
    open_page(browser, ui_url, "erin")
    assert browser.find_element(By.CSS_SELECTOR, "#user option[value=erin]").text == "erin (0, 1 deleted)"
    tab(browser, "deleted")
    erin = seeded["erin"]
    wait_for(browser, f'#deleted-results tr[data-id="{erin}"]', text="stamps")

    proc, url = start_ui(ui_env(seeded["data"], MEMORCH_USER_ID="erin"))
    try:
        browser.get(url + "/")
        wait_for(browser, '#stats[data-user="erin"]')  # its own page, not the user with the most
    finally:
        stop(proc)


def history_count(data: Path, user: str) -> int:
    with sqlite3.connect(f"file:{data / 'memorch.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM history WHERE user_id = ?", (user,)).fetchone()[0]


def test_an_expiring_memory_shows_when(browser, ui_url: str, seeded: dict) -> None:
    from selenium.webdriver.common.by import By

    with sqlite3.connect(f"file:{seeded['data'] / 'memorch.db'}?mode=ro", uri=True) as db:
        memory_id, expires = db.execute("SELECT id, expires_at FROM memories WHERE user_id = 'dave'").fetchone()
    open_page(browser, ui_url, "dave")
    label = wait_for(browser, f'#list-results tr[data-id="{memory_id}"] small.expires', text="expires ")
    assert label.find_element(By.CSS_SELECTOR, "time").get_attribute("datetime") == expires
    open_page(browser, ui_url, "alice")  # a memory without an expiry has no label
    assert browser.find_elements(By.CSS_SELECTOR, "#list-results small.expires") == []


def test_full_ids_with_a_copy_button(browser, ui_url: str, seeded: dict) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, ui_url)
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": ui_url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    rows = browser.find_elements(By.CSS_SELECTOR, "#list-results tr[data-id]")
    assert rows
    for row in rows:
        shown = row.find_element(By.CSS_SELECTOR, "td.id .full-id").text
        assert UUID_RE.match(shown) and shown == row.get_attribute("data-id")
    row = browser.find_element(By.CSS_SELECTOR, f'#list-results tr[data-id="{seeded["diffed"]}"]')
    row.find_element(By.CSS_SELECTOR, "button.copy").click()
    wait_for(browser, f'#list-results tr[data-id="{seeded["diffed"]}"] button.copy', text="Copied")
    copied = browser.execute_async_script(
        "const done = arguments[0]; navigator.clipboard.readText().then(done, (e) => done('ERROR ' + e));"
    )
    assert copied == seeded["diffed"]

    # The copied id is what the History form takes.
    tab(browser, "history")
    submit(browser, "#history-form", {"#history-id": copied})
    wait_for(browser, "#history-results tr.event-update")


def test_a_deleted_memory_is_listed_and_restored(browser, ui_url: str, seeded: dict) -> None:
    from selenium.webdriver.common.by import By

    data, memory_id = seeded["data"], seeded["marta"]
    open_page(browser, ui_url)
    deleted_before = int(browser.find_element(By.CSS_SELECTOR, "#stats").get_attribute("data-deleted"))
    row = wait_for(browser, f'#list-results tr[data-id="{memory_id}"]')
    row.find_element(By.CSS_SELECTOR, "button.delete").click()
    browser.switch_to.alert.accept()
    wait_for(browser, "#notice", text="Deleted")
    wait_for(browser, f'#stats[data-deleted="{deleted_before + 1}"]')
    wait_until(browser, lambda: memory_id not in row_ids(browser, "#list-results"))
    assert memory_id in ledger_ids(data, "alice", deleted=True)

    tab(browser, "deleted")
    gone = wait_for(browser, f'#deleted-results tr[data-id="{memory_id}"]', text="Marta")
    assert gone.find_element(By.CSS_SELECTOR, ".full-id").text == memory_id
    assert row_ids(browser, "#deleted-results") == ledger_ids(data, "alice", deleted=True)
    assert gone.find_element(By.CSS_SELECTOR, "time").get_attribute("datetime")

    gone.find_element(By.CSS_SELECTOR, "button.history").click()  # its history, deletion last
    wait_for(browser, "#history-results tr.event-delete")
    tab(browser, "deleted")  # (its list loads again)
    click(browser, f'#deleted-results tr[data-id="{memory_id}"] button.restore')
    wait_for(browser, "#notice", text="Restored")
    wait_for(browser, f'#stats[data-deleted="{deleted_before}"]')
    wait_until(browser, lambda: memory_id not in row_ids(browser, "#deleted-results"))
    wait_until(browser, lambda: memory_id in row_ids(browser, "#list-results"))
    with sqlite3.connect(f"file:{data / 'memorch.db'}?mode=ro", uri=True) as db:
        (text,) = db.execute("SELECT memory FROM memories WHERE id = ?", (memory_id,)).fetchone()
        events = [e for (e,) in db.execute("SELECT event FROM history WHERE memory_id = ? ORDER BY seq", (memory_id,))]
    assert text == "My sister is called Marta"
    assert events == ["ADD", "DELETE", "RESTORE"]


def test_explain_is_behind_a_toggle(browser, ui_url: str) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, ui_url)
    tab(browser, "search")
    submit(browser, "#search-form", {"#search-q": "flights", "#search-threshold": "0"})
    wait_for(browser, "#search-results tr[data-id]")
    explains = browser.find_elements(By.CSS_SELECTOR, "#search-results .explain")
    assert explains and not any(e.is_displayed() for e in explains)
    toggle = browser.find_element(By.CSS_SELECTOR, "#search-explain")
    toggle.click()
    assert all(e.is_displayed() and "vector rank=" in e.text for e in explains)
    toggle.click()
    assert not any(e.is_displayed() for e in explains)


def test_times_are_local_with_their_zone(browser, ui_url: str) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, ui_url)
    assert browser.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone") == ZONE
    wait_for(browser, "#list-results", text="Lisbon")
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#list-results tr[data-id]") if "Lisbon" in r.text)
    when = row.find_element(By.CSS_SELECTOR, "td.when time")
    assert when.text == "2025-01-01 22:04:05 EST"  # stored as 2025-01-02T03:04:05+00:00
    assert when.get_attribute("title").startswith("2025-01-02T03:04:05")
    assert when.get_attribute("datetime").startswith("2025-01-02T03:04:05")


def test_an_empty_graph_says_it_needs_an_llm(browser, ui_url: str, locked_url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, ui_url, "bob")  # the graph is on, but bob's memories have no relations
    tab(browser, "graph")
    note = wait_for(browser, "#graph-results .graph-note")
    assert "MEMORCH_LLM_MODEL" in note.text and "LLM extraction" in note.text
    shoot(browser, tmp_path / "graph-empty.png")
    submit(browser, "#graph-form", {"#graph-entity": "Bob"})
    wait_for(browser, "#graph-results p", text="Bob")
    assert "MEMORCH_LLM_MODEL" in wait_for(browser, "#graph-results .graph-note").text

    # The graph off (and a token: the page opened once with ?token= works from its cookie).
    browser.get(locked_url + "/?token=s3cret")
    wait_for(browser, '#stats[data-user="alice"]')
    wait_for(browser, "#list-results .empty", text="no memories")
    assert "graph off" in browser.find_element(By.CSS_SELECTOR, "#stats").text
    tab(browser, "graph")
    note = wait_for(browser, "#graph-results .graph-note")
    assert "MEMORCH_GRAPH=off" in note.text and "MEMORCH_LLM_MODEL" in note.text
    submit(browser, "#graph-form", {"#graph-entity": "Alice"})
    wait_for(browser, "#error", text="GRAPH_OFF")
    assert "MEMORCH_GRAPH=off" in wait_for(browser, "#graph-results .graph-note").text


def test_fits_a_390_px_wide_screen(browser, ui_url: str, seeded: dict, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    metrics = {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        open_page(browser, ui_url)
        assert browser.execute_script("return window.innerWidth") == PHONE[0]

        def check(name: str, doc: bool = False) -> None:
            scroll, inner, bad = layout_faults(browser)
            assert scroll <= inner, f"{name}: the page is {scroll} px wide in a {inner} px window"
            assert not bad, f"{name}: outside the viewport: {bad}"
            shoot(browser, tmp_path / f"phone-{name}.png", doc=doc)

        check("list", doc=True)
        tab(browser, "search")
        submit(browser, "#search-form", {"#search-q": "what should I avoid eating?", "#search-threshold": "0"})
        wait_for(browser, "#search-results tr[data-id]")
        browser.find_element(By.CSS_SELECTOR, "#search-explain").click()
        check("search")
        tab(browser, "deleted")
        wait_for(browser, "#deleted-results tr[data-id]")
        check("deleted")
        tab(browser, "history")
        submit(browser, "#history-form", {"#history-id": seeded["diffed"]})
        wait_for(browser, "#history-results tr.event-update")
        check("history")
        tab(browser, "graph")
        submit(browser, "#graph-form", {"#graph-entity": "Alice"})
        wait_for(browser, "#graph-results tr.relation")
        check("graph")
        tab(browser, "list")
        row = wait_for(browser, "#list-results tr[data-id]")
        row.find_element(By.CSS_SELECTOR, "button.edit").click()  # the edit box and its buttons fit too
        wait_for(browser, "#list-results textarea.edit")
        check("edit")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_favicon_and_no_failed_requests(browser, ui_url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get_log("browser")  # drop what earlier tests logged
    open_page(browser, ui_url)
    icon = browser.find_element(By.CSS_SELECTOR, "link[rel=icon]").get_attribute("href")
    assert icon.startswith("data:image/svg+xml,")
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors  # a 404 (the favicon's, or any other) is logged as SEVERE
    served = httpx.get(ui_url + "/favicon.ico")
    assert served.status_code == 200 and served.headers["content-type"].startswith("image/svg+xml")
    assert served.text.startswith("<svg")


def test_edit_in_the_page_shows_in_history_and_the_ledger(browser, ui_url: str, seeded: dict) -> None:
    from selenium.webdriver.common.by import By

    memory_id = seeded["peanuts"]
    open_page(browser, ui_url)
    tab(browser, "search")
    submit(browser, "#search-form", {"#search-q": "peanuts", "#search-threshold": "0"})
    row = wait_for(browser, f'#search-results tr[data-id="{memory_id}"]')
    row.find_element(By.CSS_SELECTOR, "button.edit").click()
    box = wait_for(browser, f'#search-results tr[data-id="{memory_id}"] textarea.edit')
    box.clear()
    box.send_keys("I am allergic to peanuts and kiwis")
    browser.find_element(By.CSS_SELECTOR, f'#search-results tr[data-id="{memory_id}"] button.save').click()
    wait_for(browser, f'#search-results tr[data-id="{memory_id}"] td.text', text="kiwis")

    browser.find_element(By.CSS_SELECTOR, f'#search-results tr[data-id="{memory_id}"] button.history').click()
    update = wait_for(browser, "#history-results tr.event-update")
    assert [ins.text.strip() for ins in update.find_elements(By.TAG_NAME, "ins")] == ["and kiwis"]
    assert not update.find_elements(By.TAG_NAME, "del")

    with sqlite3.connect(f"file:{seeded['data'] / 'memorch.db'}?mode=ro", uri=True) as db:
        (text,) = db.execute("SELECT memory FROM memories WHERE id = ?", (memory_id,)).fetchone()
        events = db.execute("SELECT event FROM history WHERE memory_id = ? ORDER BY seq", (memory_id,)).fetchall()
    assert text == "I am allergic to peanuts and kiwis"
    assert [e[0] for e in events] == ["ADD", "UPDATE"]

    # Undo the edit from the history view: the old text is back, and the restore is in the history.
    update.find_element(By.CSS_SELECTOR, "button.restore").click()
    restored = wait_for(browser, "#history-results tr.event-restore")
    assert [ins.text.strip() for ins in restored.find_elements(By.TAG_NAME, "del")] == ["and kiwis"]
    with sqlite3.connect(f"file:{seeded['data'] / 'memorch.db'}?mode=ro", uri=True) as db:
        (text,) = db.execute("SELECT memory FROM memories WHERE id = ?", (memory_id,)).fetchone()
    assert text == "I am allergic to peanuts"


def test_token_protects_every_request(locked_url: str) -> None:
    url = locked_url  # empty data directory, token s3cret
    refused = httpx.get(url + "/api/scopes")
    assert refused.status_code == 401 and refused.json()["error_code"] == "UNAUTHORIZED"
    assert httpx.get(url + "/api/scopes", headers={"Authorization": "Bearer wrong"}).status_code == 401
    page = httpx.get(url + "/")
    assert page.status_code == 401 and 'name="token"' in page.text  # the page asks for the token
    assert httpx.get(url + "/favicon.ico").status_code == 200  # the form's icon and style need no token
    assert httpx.get(url + "/static/ui.css").status_code == 200
    assert httpx.get(url + "/static/ui.js").status_code == 401
    ok = httpx.get(url + "/api/scopes", headers={"Authorization": "bearer s3cret"})
    assert ok.status_code == 200 and ok.json()["default_user_id"] == "alice"

    with httpx.Client(base_url=url, timeout=60) as client:
        login = client.get("/?token=s3cret")
        assert login.status_code == 303 and "httponly" in login.headers["set-cookie"].lower()
        assert client.get(login.headers["location"]).status_code == 200
        assert client.get("/api/stats").status_code == 200  # the cookie from now on
        foreign = client.delete(f"/api/memories/{uuid.uuid4()}", headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        assert client.get("/", headers={"Host": "evil.example"}).status_code == 421  # DNS rebinding


def test_refuses_a_non_loopback_host_without_a_token(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "memorch", "ui", "--host", "0.0.0.0", "--port", str(free_port())]
    result = subprocess.run(command, env=ui_env(tmp_path / "data"), capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "UNAUTHENTICATED_BIND" in result.stderr and "MEMORCH_AUTH_TOKEN" in result.stderr
    assert "--allow-unauthenticated" not in result.stderr  # serve's option: `memorch ui` has none


def wait_for_alert(driver, timeout: float = 20):
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.alert_is_present())


def history_events(data: Path, memory_id: str) -> list[tuple[str, str | None, str | None]]:
    with sqlite3.connect(f"file:{data / 'memorch.db'}?mode=ro", uri=True) as db:
        sql = "SELECT event, old_memory, new_memory FROM history WHERE memory_id = ? ORDER BY seq"
        return list(db.execute(sql, (memory_id,)))


def test_forget_a_memory_and_a_whole_user_for_good(browser, ui_url: str, seeded: dict, tmp_path: Path) -> None:
    """Forget (a purge) in the page: a confirmation that says it cannot be undone, then no byte of
    the text under the data directory, a text-free PURGE event as the whole history, and Restore
    refused; for the whole user, the user's name typed to confirm."""
    from selenium.webdriver.common.by import By

    data, (first, deleted, last), secrets = seeded["data"], seeded["carol"], seeded["secrets"]
    open_page(browser, ui_url, "carol")
    assert row_ids(browser, "#list-results") == {first, last}

    click(browser, f'#list-results tr[data-id="{first}"] button.forget')
    alert = browser.switch_to.alert
    assert "for good" in alert.text and "cannot be undone" in alert.text and secrets[0] in alert.text
    alert.dismiss()  # said no: nothing happens
    time.sleep(0.3)
    assert first in ledger_ids(data, "carol") and occurrences(data, [secrets[0]])
    click(browser, f'#list-results tr[data-id="{first}"] button.forget')
    browser.switch_to.alert.accept()
    wait_for(browser, "#notice", text="for good")
    wait_until(browser, lambda: first not in row_ids(browser, "#list-results"))
    assert history_events(data, first) == [("PURGE", None, None)]
    assert occurrences(data, [secrets[0]]) == []
    refused = httpx.post(f"{ui_url}/api/memories/{first}/restore", json={})
    assert refused.status_code == 404 and refused.json()["error_code"] == "MEMORY_PURGED"
    shoot(browser, tmp_path / "forgot.png")

    # A deleted memory: the Deleted view forgets it too, and it leaves that view.
    tab(browser, "deleted")
    click(browser, f'#deleted-results tr[data-id="{deleted}"] button.forget')
    browser.switch_to.alert.accept()
    wait_for(browser, '#stats[data-deleted="0"]')
    wait_for(browser, "#deleted-results .empty", text="no deleted memories for carol")
    assert history_events(data, deleted) == [("PURGE", None, None)] and occurrences(data, [secrets[1]]) == []

    # The whole user: a wrong name forgets nothing; carol's name does.
    tab(browser, "list")
    click(browser, "#list-form button.forget-all")
    prompt = wait_for_alert(browser)  # asked once the page has the count of every layer
    assert "carol" in prompt.text and "cannot be undone" in prompt.text
    prompt.send_keys("bob")
    prompt.accept()
    wait_for(browser, "#notice", text="Nothing was forgotten")
    assert ledger_ids(data, "carol") == {last}
    click(browser, "#list-form button.forget-all")
    prompt = wait_for_alert(browser)
    prompt.send_keys("carol")
    prompt.accept()
    wait_for(browser, "#notice", text="Purged 1 memory")
    wait_for(browser, '#stats[data-memories="0"]')
    wait_for(browser, "#list-results .empty", text="no memories are stored for user_id 'carol'")
    assert ledger_ids(data, "carol") == set() and history_events(data, last) == [("PURGE", None, None)]
    assert occurrences(data, secrets) == []
    assert ledger_ids(data, "bob") and ledger_ids(data, "alice")  # the other users are untouched
    shoot(browser, tmp_path / "forgot-all.png")
    assert browser.find_element(By.CSS_SELECTOR, "#stats").get_attribute("data-user") == "carol"


def test_forgetting_a_user_needs_its_name_and_confirm(ui_url: str) -> None:
    for body in ({"user_id": "bob"}, {"user_id": "bob", "confirm": "yes"}, {"confirm": True}):
        refused = httpx.post(ui_url + "/api/forget", json=body)
        assert refused.status_code == 400 and refused.json()["error_code"] == "CONFIRMATION_REQUIRED", body
    unknown = httpx.post(f"{ui_url}/api/memories/{uuid.uuid4()}/forget")
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "MEMORY_NOT_FOUND"
    assert httpx.get(ui_url + "/api/memories?user_id=bob").json()["results"]  # nothing was forgotten
