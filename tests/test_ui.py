"""`memorch ui`: a real server subprocess on 127.0.0.1 over a seeded data directory, driven by a real
headless Chromium (Debian's chromium + chromium-driver, through selenium).

Without Chromium the browser tests skip, unless MEMORCH_REQUIRE_BROWSER=1 (CI) makes that a failure.
The HTTP-level tests (token, Host, loopback refusal) need no browser.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memorch import Memory, MemoryConfig

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WINDOW = (1200, 800)


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
        m.add("My sister is called Marta", user_id="alice")
        m.add("Bob plays chess on Sundays", user_id="bob")
        m.import_memories(
            [
                exported("Alice lives in Lisbon", [("Alice", "lives_in", "Lisbon")]),
                exported("Alice works at Acme", [("Alice", "works_at", "Acme"), ("Acme", "based_in", "Porto")]),
            ]
        )
        diffed = m.add("I drink coffee every morning", user_id="alice")["results"][0]["id"]
        m.update(diffed, "I drink green tea every morning")
        m.flush_graph()
    return {"data": data, "peanuts": peanuts["results"][0]["id"], "diffed": diffed}


@pytest.fixture(scope="module")
def ui_url(seeded: dict) -> Iterator[str]:
    proc, url = start_ui(ui_env(seeded["data"]))
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
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
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


def shoot(driver, path: Path) -> None:
    png = driver.get_screenshot_as_png()
    path.write_bytes(png)
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


def test_screenshots_of_every_view(browser, ui_url: str, seeded: dict, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(ui_url + "/")
    wait_for(browser, "#user option[value=bob]")
    submit(browser, "#search-form", {"#search-q": "what should I avoid eating?", "#search-threshold": "0"})
    first = wait_for(browser, "#search-results tr[data-id] td.score")
    assert 0 < float(first.text) <= 1
    assert (
        browser.find_element(By.CSS_SELECTOR, "#search-results tr[data-id]").get_attribute("data-id")
        == seeded["peanuts"]
    )
    assert "vector" in browser.find_element(By.CSS_SELECTOR, "#search-results .explain").text
    shoot(browser, tmp_path / "search.png")

    browser.find_element(By.CSS_SELECTOR, ".tab[data-view=list]").click()
    submit(browser, "#list-form", {"#list-filters": '{"category": "travel"}'})
    wait_for(browser, "#list-results tr[data-id]", text="window seats")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#list-results tr[data-id]")) == 1
    shoot(browser, tmp_path / "list.png")

    submit(browser, "#list-form", {"#list-filters": "{not json"})
    wait_for(browser, "#error", text="INVALID_REQUEST")  # the API's error JSON, shown in the page
    assert "Suggestion" in browser.find_element(By.CSS_SELECTOR, "#error").text

    browser.find_element(By.CSS_SELECTOR, ".tab[data-view=history]").click()
    submit(browser, "#history-form", {"#history-id": seeded["diffed"]})
    wait_for(browser, "#history-results tr.event-update")
    assert browser.find_element(By.CSS_SELECTOR, "#history-results tr.event-update del").text == "coffee"
    assert "green" in browser.find_element(By.CSS_SELECTOR, "#history-results tr.event-update").text
    shoot(browser, tmp_path / "history.png")

    browser.find_element(By.CSS_SELECTOR, ".tab[data-view=graph]").click()
    submit(browser, "#graph-form", {"#graph-entity": "Alice"})
    wait_for(browser, "#graph-results tr.relation")
    triples = {
        tuple(td.text for td in row.find_elements(By.TAG_NAME, "td"))
        for row in browser.find_elements(By.CSS_SELECTOR, "#graph-results tr.relation")
    }
    assert {("Alice", "lives_in", "Lisbon"), ("Alice", "works_at", "Acme")} <= triples
    shoot(browser, tmp_path / "graph.png")


def test_edit_in_the_page_shows_in_history_and_the_ledger(browser, ui_url: str, seeded: dict) -> None:
    from selenium.webdriver.common.by import By

    memory_id = seeded["peanuts"]
    browser.get(ui_url + "/")
    wait_for(browser, "#user option[value=alice]")
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


def test_token_protects_every_request(tmp_path: Path) -> None:
    proc, url = start_ui(ui_env(tmp_path / "data", MEMORCH_AUTH_TOKEN="s3cret"))
    try:
        refused = httpx.get(url + "/api/scopes")
        assert refused.status_code == 401 and refused.json()["error_code"] == "UNAUTHORIZED"
        assert httpx.get(url + "/api/scopes", headers={"Authorization": "Bearer wrong"}).status_code == 401
        page = httpx.get(url + "/")
        assert page.status_code == 401 and 'name="token"' in page.text  # the page asks for the token
        ok = httpx.get(url + "/api/scopes", headers={"Authorization": "bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["default_user_id"] == "alice"

        with httpx.Client(base_url=url) as client:
            login = client.get("/?token=s3cret")
            assert login.status_code == 303 and "httponly" in login.headers["set-cookie"].lower()
            assert client.get(login.headers["location"]).status_code == 200
            assert client.get("/api/stats").status_code == 200  # the cookie from now on
            foreign = client.delete(f"/api/memories/{uuid.uuid4()}", headers={"Origin": "http://evil.example"})
            assert foreign.status_code == 403
            assert client.get("/", headers={"Host": "evil.example"}).status_code == 421  # DNS rebinding
    finally:
        stop(proc)


def test_refuses_a_non_loopback_host_without_a_token(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "memorch", "ui", "--host", "0.0.0.0", "--port", str(free_port())]
    result = subprocess.run(command, env=ui_env(tmp_path / "data"), capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "UNAUTHENTICATED_BIND" in result.stderr and "MEMORCH_AUTH_TOKEN" in result.stderr
