"""The web page at ``/`` in headless Chromium (Playwright driving Debian's chromium) against
``serve`` as a subprocess and the fake provider: signing in, streamed answers, approvals,
keep_open messages, cancelling, reconnecting, the session list; and the page itself: self
contained, every API path it uses documented, its CSP admitting exactly its own code."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from runtime.model import Response, TextPart, Usage
from runtime.server.openapi import build
from runtime.server.page import PAGE, PAGE_FILE, content_security_policy
from runtime.server.sse import stream_end
from runtime.testing import FakeProviderServer
from runtime.testing.faults import server_error, stall
from runtime.testing.script import RecordedRequest

from .browser import CHROMIUM, FLAGS, SKIP_REASON, Relay, Watched, have_chromium
from .conftest import KEYS, Brain, Fake, bearer, server_config

HELD = "a partial answer that stops here and waits for ever"
HELD_SHOWN = HELD[:15]   # the 6 events sent: the role, then 5 pieces of 3 characters
WAIT_MS = 30_000


class PageBrain(Brain):
    """``Brain``, and: ``[hold]``, the answer stops after a few streamed pieces (until the
    turn is cancelled); ``[cut]``, an answer cut at the output limit; ``[gate]``, the first
    answer waits until the test opens ``gate`` (live text is never replayed, so the test lets
    it flow once the page is listening; the fake provider answers nothing else meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def __call__(self, req: RecordedRequest) -> Any:
        users = [m for m in req.body.get("messages", []) if m.get("role") == "user"]
        if len(users) == 1 and "[gate]" in str(users[0].get("content")):
            if not self.gate.wait(WAIT_MS / 1000):
                raise RuntimeError("the test never opened the gate")
            self.gate.clear()
        if users and "[cut]" in str(users[0].get("content")):
            return Response(parts=[TextPart("an answer cut short")], stop="length",
                            usage=Usage(input_tokens=100, output_tokens=20))
        if users and "[hold]" in str(users[0].get("content")):
            return stall(3600.0, after_events=6, then=Response(
                parts=[TextPart(HELD)], stop="end_turn",
                usage=Usage(input_tokens=100, output_tokens=20)))
        return super().__call__(req)


@pytest.fixture
def paced() -> Iterator[Fake]:
    """The fake provider streaming answers in 3-character pieces 30 ms apart."""
    brain = PageBrain()
    with FakeProviderServer.in_thread([brain] * 400, chunk_chars=3,
                                      chunk_delay=0.03) as server:
        yield Fake(server, brain)


def gate(fake: Fake) -> threading.Event:
    """The gate of the ``[gate]`` answer."""
    assert isinstance(fake.brain, PageBrain)
    return fake.brain.gate


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, launched by Playwright (skipped without chromium)."""
    if not have_chromium():
        pytest.skip(SKIP_REASON)
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def open_page(browser: Browser, url: str, *, phone: bool = False) -> tuple[Watched, Any]:
    """A fresh context and page at ``url/``; returns the watcher and the page's response."""
    viewport = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    watched = Watched(page)
    response = page.goto(f"{url}/")
    return watched, response


def sign_in(page: Page, name: str, *, remember: bool = False) -> None:
    page.fill("#key", KEYS[name][0])
    if remember:
        page.check("#remember")
    page.press("#key", "Enter")
    expect(page.locator("#who-name")).to_have_text(f"key:{name}")


def start(page: Page, task: str, *, keep_open: bool = False) -> str:
    """Start a session from the form; its id once the page shows it."""
    page.fill("#task", task)
    if keep_open:
        page.check("#keep-open")
    elif page.is_checked("#keep-open"):
        page.uncheck("#keep-open")
    before = page.text_content("#session-id") or ""
    page.click("#start")
    expect(page.locator("#session-id")).not_to_have_text(before)
    expect(page.locator("#session-id")).not_to_have_text("")
    return page.text_content("#session-id") or ""


def status_is(page: Page, status: str) -> None:
    expect(page.locator("#status")).to_have_text(status)


def transcript(tmp_path: Path, sid: str) -> list[dict[str, Any]]:
    path = tmp_path / "logging" / sid / "transcript.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def shown_seqs(page: Page) -> list[int]:
    """The seq of every record element in the transcript view, in page order."""
    seqs: list[str] = page.eval_on_selector_all("#log [data-seq]",
                                                "els => els.map(e => e.dataset.seq)")
    return [int(s) for s in seqs]


def answers(page: Page) -> list[str]:
    out: list[str] = page.eval_on_selector_all("#log li.assistant .text",
                                               "els => els.map(e => e.textContent)")
    return out


def unlabelled(page: Page) -> list[str]:
    """The controls on the page without an accessible name (a label, aria-label(ledby), or
    the text of a button)."""
    out: list[str] = page.evaluate("""() => Array.from(
      document.querySelectorAll("input, select, textarea, button, summary"))
      .filter((e) => e.getClientRects().length > 0)
      .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
                     && !e.getAttribute("aria-labelledby") && !e.textContent.trim())
      .map((e) => e.outerHTML.slice(0, 80))""")
    return out


# every distinct text the answers of the open session pass through (a MutationObserver sees
# each change the page makes, whatever the test's own timing)
RECORD_STATES = """() => {
  window.__states = [];
  const log = document.getElementById("log");
  const snap = () => {
    const t = Array.from(log.querySelectorAll("li.assistant .text"), (e) => e.textContent)
      .join("|");
    const s = window.__states;
    if (t && s[s.length - 1] !== t) s.push(t);
  };
  new MutationObserver(snap).observe(log, {subtree: true, childList: true, characterData: true});
}"""


def test_page_runs_sessions_in_chromium(tmp_path: Path, paced: Fake, serve: Any,
                                        browser: Browser) -> None:
    """Paste a key; a session's answer appears piece by piece (growing prefixes, as the fake
    provider paces it) with its tokens and cost; a tool call is approved under ``approval:
    ask`` (every control on screen labelled) and its result and the final answer shown; a keep_open session takes a second
    message and is cancelled; each record shown once; the list shows the three; the CSP
    header is the page's own and nothing was blocked, no console or page error."""
    served = serve(server_config(tmp_path, paced))
    watched, response = open_page(browser, served.url)
    page = watched.page
    csp = response.headers["content-security-policy"]
    assert csp == PAGE.headers["content-security-policy"]
    assert "connect-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "key" not in page.url
    expect(page.locator("#key")).to_be_focused()
    sign_in(page, "ops")
    expect(page.locator("#who-scopes")).to_contain_text("approvals:write")

    # 1. the answer streams in
    page.evaluate(RECORD_STATES)
    first = start(page, "hello there [gate]")
    expect(page.locator("#session-title")).to_be_focused()
    expect(page.locator("#conn")).to_have_text("live")
    gate(paced).set()
    status_is(page, "finished")
    full = "answer 1 to: hello there [gate] streamed in many small pieces"
    states: list[str] = page.evaluate("window.__states")
    assert states[-1] == full
    assert len(states) >= 4, states                    # several pieces seen on their own
    for before, after in itertools.pairwise(states):
        assert after.startswith(before) and len(after) > len(before), states
    assert page.get_attribute("#log li.assistant", "aria-busy") == "false"
    assert page.get_attribute("#log", "aria-live") == "polite"
    expect(page.locator("#usage")).to_have_text("100 in / 20 out tokens · $0.00014")
    records = transcript(tmp_path, first)
    assert shown_seqs(page) == [r["seq"] for r in records]

    # 2. a tool call waits for approval; approving it runs the tool
    second = start(page, "please run it [tool]")
    approval = page.locator(".approval")
    expect(approval).to_have_count(1, timeout=WAIT_MS)
    status_is(page, "waiting_approval")
    expect(approval).to_contain_text("echo approved-run")
    page.click("#cancel-box summary")                   # every control on screen
    assert unlabelled(page) == []
    page.click("#cancel-box summary")
    approval.locator("input[type=text]").fill("looks safe")
    approval.locator("input[type=checkbox]").check()
    approval.locator("button.approve").click()
    expect(approval).to_have_count(0)
    status_is(page, "finished")
    expect(page.locator("#log li.decision")).to_have_text("Approved by key:ops: looks safe")
    expect(page.locator("#log li.tool").last).to_contain_text("approved-run")
    assert answers(page)[-1].startswith("done after the tool: exit code: 0")
    expect(page.locator("#usage")).to_have_text("200 in / 40 out tokens · $0.00028")
    assert shown_seqs(page) == [r["seq"] for r in transcript(tmp_path, second)]
    audit = [json.loads(line) for line in
             (tmp_path / "logging" / "audit.jsonl").read_text().splitlines()]
    assert [(a["who"], a.get("reason"), a.get("always")) for a in audit
            if a["action"] == "approval"] == [("key:ops", "looks safe", True)]

    # 3. keep_open: a second message, then cancel
    third = start(page, "first question", keep_open=True)
    status_is(page, "waiting_input")
    expect(page.locator("#log li.assistant")).to_have_text(
        "Assistant" + "answer 1 to: first question streamed in many small pieces")
    page.fill("#message", "second question")
    page.press("#message", "Control+Enter")
    expect(page.locator("#log li.user").last).to_contain_text("second question")
    status_is(page, "waiting_input")
    expect(page.locator("#log li.assistant")).to_have_count(2)
    assert answers(page)[-1] == "answer 2 to: second question streamed in many small pieces"
    page.click("#cancel-box summary")
    page.fill("#cancel-reason", "enough")
    page.click("#cancel")
    status_is(page, "cancelled")
    expect(page.locator("#log li.end")).to_contain_text("Session cancelled")
    expect(page.locator("#message-form")).to_be_hidden()
    expect(page.locator("#cancel-box")).to_be_hidden()
    assert shown_seqs(page) == [r["seq"] for r in transcript(tmp_path, third)]

    # the list: newest first, each with its status
    page.click("#refresh")
    rows = page.locator("#sessions li")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text(third)
    expect(rows.nth(0).locator(".badge")).to_have_text("cancelled")
    expect(rows.nth(1).locator(".badge")).to_have_text("finished")
    expect(rows.nth(2)).to_contain_text(first)
    expect(rows.nth(2)).to_contain_text("1 turn · $0.00014")
    assert watched.problems() == []
    for _method, url, headers, _body in watched.requests:   # the key only ever in the header
        assert KEYS["ops"][0] not in url
        if "/v1/" in url or url.endswith("/openapi.json"):
            assert headers.get("authorization") == f"Bearer {KEYS['ops'][0]}"
    page.context.close()


def test_approvals_warnings_errors_and_folds_on_a_phone(
        tmp_path: Path, paced: Fake, serve: Any, browser: Browser) -> None:
    """At phone width: the approval buttons go away when another key approves; a denial
    with a reason is made with the keyboard alone (focus returns to the session heading);
    provider, model and max_turns from the form reach the API (the turn limit shows as the
    status); a long tool result is folded; a warning is shown; a provider error is shown
    and the session fails; nothing overflows the width."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    for i in range(40):
        (workspace / f"file-{i:02d}.txt").write_text("x")
    served = serve(server_config(tmp_path, paced))
    watched, _ = open_page(browser, served.url, phone=True)
    page = watched.page
    sign_in(page, "ops")

    sid = start(page, "run it elsewhere [tool]")
    expect(page.locator(".approval button.approve")).to_be_visible()
    answered = httpx.post(f"{served.url}/v1/sessions/{sid}/approvals/call_1",
                          json={"allow": True}, headers=bearer("approver"))
    assert answered.status_code == 200
    expect(page.locator(".approval")).to_have_count(0)
    expect(page.locator("#log li.decision")).to_have_text("Approved by key:approver")
    status_is(page, "finished")

    start(page, "do not run it [tool]")
    panel = page.locator(".approval")
    panel.locator("input[type=text]").focus()
    page.keyboard.type("not today")
    for _ in range(3):                                   # always, Approve, Deny
        page.keyboard.press("Tab")
    expect(panel.locator("button.deny")).to_be_focused()
    page.keyboard.press("Enter")
    expect(panel).to_have_count(0)
    expect(page.locator("#session-title")).to_be_focused()
    expect(page.locator("#log li.warning").last).to_have_text("Denied by key:ops: not today")
    status_is(page, "finished")
    assert "echo approved-run" not in (page.text_content("#log li.problem") or "x")

    expect(page.locator("#provider option")).to_have_text(["configured default", "main"])
    page.select_option("#provider", "main")
    expect(page.locator("#model")).to_be_hidden()       # no allowlist: any model, typed
    page.fill("#model-text", "other-model")
    page.fill("#max-turns", "1")
    start(page, "list the files [list]")
    status_is(page, "limit")
    created = next(json.loads(body) for method, url, _, body in watched.requests
                   if method == "POST" and url.endswith("/v1/sessions") and body
                   and "[list]" in body)
    assert created == {"task": "list the files [list]", "provider": "main",
                       "model": "other-model", "max_turns": 1}
    page.check("#show-all")
    expect(page.locator("#log li.meta").first).to_be_visible()
    expect(page.locator("#log")).to_contain_text("request to main (other-model)")
    page.uncheck("#show-all")
    expect(page.locator("#log li.meta").first).to_be_hidden()
    expect(page.locator("#log li.end")).to_contain_text("Session limit after 1 turn")
    fold = page.locator("#log li.tool details.fold")
    expect(fold).to_have_count(1)
    assert fold.get_attribute("open") is None
    expect(fold.locator("summary")).to_contain_text("lines")
    fold.locator("summary").click()
    expect(fold.locator("pre")).to_contain_text("file-39.txt")

    page.select_option("#provider", "")
    page.fill("#model-text", "")
    page.fill("#max-turns", "")
    start(page, "stop early [cut]")
    status_is(page, "finished")
    expect(page.locator("#log li.warning", has_text="length_cutoff")).to_have_text(
        "Warning (length_cutoff)the answer of main ended at the output token limit "
        "(max_tokens): it may be incomplete")
    paced.server.inject(server_error(503))
    start(page, "this one fails")
    status_is(page, "failed")
    expect(page.locator("#log li.problem").first).to_contain_text(
        "Provider error from main: server (HTTP 503)The server had an error")
    expect(page.locator("#log li.end")).to_contain_text("Session failed")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
    assert watched.problems() == []
    page.context.close()


def test_reconnects_after_a_cut_and_a_stream_end(tmp_path: Path, paced: Fake, serve: Any,
                                                 browser: Browser) -> None:
    """Through a relay that breaks the page's streams: after a cut connection and after a
    ``stream_end`` (dropped) the page resumes with Last-Event-ID set to the last record it
    showed, and shows every record once; a held answer survives a cut mid-stream and is
    then cancelled from the page."""
    served = serve(server_config(tmp_path, paced))
    relay = Relay(served.url)
    try:
        watched, _ = open_page(browser, relay.url)
        page = watched.page
        sign_in(page, "ops")

        sid = start(page, "please run it [tool]")
        expect(page.locator(".approval")).to_have_count(1)
        waiting = max(shown_seqs(page))
        assert relay.cut() == 1
        _wait_for_requests(page, relay, 2)
        assert relay.event_requests()[1].get("last-event-id") == str(waiting)
        assert relay.end(stream_end("dropped", waiting, "this watcher fell behind")) == 1
        _wait_for_requests(page, relay, 3)
        assert relay.event_requests()[2].get("last-event-id") == str(waiting)
        expect(page.locator(".approval")).to_have_count(1)
        page.locator(".approval button.approve").click()
        status_is(page, "finished")
        assert shown_seqs(page) == [r["seq"] for r in transcript(tmp_path, sid)]

        held = start(page, "wait for it [hold] [gate]")
        expect(page.locator("#conn")).to_have_text("live")
        gate(paced).set()
        expect(page.locator("#log li.assistant .text")).to_have_text(HELD_SHOWN)
        partial = answers(page)[0]
        before = len(relay.event_requests())
        assert relay.cut() == 1
        _wait_for_requests(page, relay, before + 1)
        assert answers(page) == [partial]
        page.click("#cancel-box summary")
        page.click("#cancel")
        status_is(page, "cancelled")
        records = transcript(tmp_path, held)
        assert shown_seqs(page) == [r["seq"] for r in records]
        interrupted = next(r for r in records if r["type"] == "assistant")
        assert interrupted["status"] == "interrupted"
        assert answers(page) == [interrupted["text"]]
        # a cut connection is the browser's own network error; nothing else is allowed
        assert watched.problems(expected=("net::ERR_",)) == []
        page.context.close()
    finally:
        relay.close()


def _wait_for_requests(page: Page, relay: Relay, n: int) -> None:
    """Until the relay has seen ``n`` event stream requests and the page says it is live."""
    deadline = WAIT_MS
    while len(relay.event_requests()) < n or relay.open_streams() < 1:
        page.wait_for_timeout(50)
        deadline -= 50
        assert deadline > 0, f"the page did not reconnect: {relay.event_requests()}"
    expect(page.locator("#conn")).to_have_text("live")


def test_keys_scopes_storage_and_paging(tmp_path: Path, fake: Fake, serve: Any,
                                        browser: Browser) -> None:
    """``/v1/whoami`` says who a key is; a wrong key gets a clear 401 message (a malformed
    one is refused before it is sent), a key without sessions:read a clear 403 (and no
    form it cannot use); the key stays in memory unless kept for the tab (sessionStorage,
    never localStorage, never the URL); the models of an allowlist are offered as a list;
    the list pages with "Load more" and refreshes."""
    config = server_config(tmp_path, fake)
    cfg = yaml.safe_load(config.read_text())
    cfg["providers"]["main"]["models"] = ["fake-model", "fake-model-large"]
    config.write_text(yaml.safe_dump(cfg))
    served = serve(config)
    me = httpx.get(f"{served.url}/v1/whoami", headers=bearer("viewer"))
    assert me.json() == {"id": "key:viewer", "kind": "key", "name": "viewer",
                         "scopes": ["sessions:read"]}
    assert httpx.get(f"{served.url}/v1/whoami").status_code == 401
    watched, _ = open_page(browser, served.url)
    page = watched.page

    page.fill("#key", "not a key")
    page.press("#key", "Enter")
    expect(page.locator("#key-error")).to_contain_text("printable ASCII without spaces")
    page.fill("#key", "not-a-key")
    page.press("#key", "Enter")
    expect(page.locator("#key-error")).to_contain_text("did not accept this key (401)")
    expect(page.locator("#app")).to_be_hidden()
    expect(page.locator("#key")).to_be_focused()

    sign_in(page, "approver")
    expect(page.locator("#list-error")).to_contain_text("(403)")
    expect(page.locator("#list-error")).to_contain_text("sessions:read")
    expect(page.locator("#new-form")).to_be_hidden()
    expect(page.locator("#new-denied")).to_be_visible()
    page.click("#sign-out")
    expect(page.locator("#key-panel")).to_be_visible()

    sign_in(page, "ops")                                # memory only
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0
    page.reload()
    expect(page.locator("#key-panel")).to_be_visible()
    sign_in(page, "ops", remember=True)                 # kept for this tab
    assert page.evaluate("sessionStorage.length") == 1
    assert page.evaluate("localStorage.length") == 0
    page.reload()
    expect(page.locator("#who-name")).to_have_text("key:ops")
    expect(page.locator("#model option")).to_have_text(
        ["configured default", "fake-model", "fake-model-large"])
    expect(page.locator("#model-text")).to_be_hidden()

    ids = [httpx.post(f"{served.url}/v1/sessions", json={"task": f"task {i}"},
                      headers=bearer("ops")).json()["id"] for i in range(23)]
    page.click("#refresh")
    rows = page.locator("#sessions li button")
    expect(rows).to_have_count(20)
    page.click("#more")
    expect(rows).to_have_count(23)
    expect(page.locator("#more")).to_be_hidden()
    listed = rows.evaluate_all("bs => bs.map(b => b.dataset.id)")
    assert listed == ids[::-1]
    extra = httpx.post(f"{served.url}/v1/sessions", json={"task": "one more"},
                       headers=bearer("ops")).json()["id"]
    page.click("#refresh")
    expect(rows.first).to_contain_text(extra)
    expect(rows).to_have_count(20)
    rows.first.click()
    expect(page.locator("#session-id")).to_have_text(extra)
    assert extra in page.url and KEYS["ops"][0] not in page.url
    status_is(page, "finished")

    page.click("#sign-out")
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0
    # the watcher catches a blocked load (so its empty report above means something)
    page.evaluate("() => { const i = document.createElement('img');"
                  " i.src = 'https://example.invalid/x.png'; document.body.append(i); }")
    page.wait_for_function("() => window.__violations.length > 0")
    problems = watched.problems(expected=("status of 401", "status of 403"))
    assert problems and all("example.invalid" in p for p in problems), problems
    page.context.close()


def test_page_is_self_contained_and_uses_documented_paths() -> None:
    """The page names no external URL and parses no HTML from strings; every API call it
    makes is a route of ``/openapi.json``, and no API path appears outside its table; its
    CSP hashes are those of its one style and one script."""
    html = PAGE_FILE.read_text()
    assert not re.search(r"https?://", html)
    assert not re.search(r"""["'(=]\s*//""", html)          # protocol-relative
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "localStorage", "new EventSource"):
        assert sink not in html, sink
    table = re.search(r"const ROUTES = \{(.*?)\n\};", html, re.S)
    assert table is not None
    routes = re.findall(r'\["(GET|POST)", "([^"]+)"\]', table.group(1))
    assert len(routes) == table.group(1).count("[") == 9
    paths = build()["paths"]
    for method, path in routes:
        assert method.lower() in paths.get(path, {}), (method, path)
    outside = html.replace(table.group(0), "")
    assert not re.search(r"""["'`]/(v1|openapi|metrics|health|ready)""", outside)
    csp = content_security_policy(html)
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    with pytest.raises(ValueError):
        content_security_policy(html.replace("</body>", "<script>x()</script></body>"))
