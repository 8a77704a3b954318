"""Drives agentd's web console in headless Chromium (Debian's `chromium`)
with Playwright's sync API.

Usage:
    python3 console_browser.py api_key BASE ADMIN_KEY USER_KEY OTHER_TENANT_RUN DEAD_RUN
    python3 console_browser.py none BASE

BASE is agentd's http://127.0.0.1:PORT. `api_key` (auth.mode = "api_key"):
ADMIN_KEY a key of tenant acme with role admin, USER_KEY one of acme
without it; OTHER_TENANT_RUN a run of another tenant; DEAD_RUN a dead run
of acme. `none` (auth.mode = "none", with exactly 30 runs): no sign-in;
paging; a run approved, forked and cancelled from its page, and the page
used by keyboard.
With AGENTD_CONSOLE_SCREENSHOTS=DIR, PNGs of the main pages are saved there.

Each check asserts what the browser shows; the last line printed is a JSON
object of what the script did (run ids, pages visited, CSP violations), for
the Rust test to check through the API.
"""

import json
import os
import re
import sys
import time
import uuid

from playwright.sync_api import expect, sync_playwright

MODE, BASE = sys.argv[1:3]
if MODE == "api_key":
    ADMIN_KEY, USER_KEY, OTHER_RUN, DEAD_RUN = sys.argv[3:7]
SHOTS = os.environ.get("AGENTD_CONSOLE_SCREENSHOTS")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT = 15_000
# Every CSP violation the page sees, whatever reported it.
WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) =>
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""

# Every text the run page shows as streamed (token events), as it changes.
RECORD_STREAMED = """
window.__streamed = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('[data-testid=streamed]'))
    if (el.textContent && !window.__streamed.includes(el.textContent)) window.__streamed.push(el.textContent);
}).observe(document.body, { subtree: true, childList: true, characterData: true });
"""

violations = []
visited = []


def watch(page, who):
    def on_console(msg):
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            violations.append(f"{who}: console: {msg.text}")
    page.on("console", on_console)
    page.on("pageerror", lambda e: violations.append(f"{who}: pageerror: {e}"))


def collect(page, who):
    """Records the page's CSP violations so far (the list lives until the
    next full load, so this runs before each goto)."""
    try:
        for v in page.evaluate("window.__csp || []"):
            violations.append(f"{who} {page.url}: {v}")
        page.evaluate("window.__csp = []")
    except Exception:  # a page mid-navigation
        pass


def goto(page, who, path):
    collect(page, who)
    res = page.goto(BASE + path)
    csp = res.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp, (path, csp)
    visited.append(path)
    return res


def shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.evaluate("document.getElementById('status').replaceChildren()")
        page.mouse.move(1270, 790)  # no hover styles
        page.wait_for_timeout(300)  # fonts and the last paint
        page.screenshot(path=os.path.join(SHOTS, name + ".png"))


def sign_in(page, who, key, expect_principal):
    goto(page, who, "/console/runs")
    expect(page).to_have_url(BASE + "/console/sign-in?next=%2Fconsole%2Fruns")
    field = page.get_by_label("API key or JWT")
    expect(field).to_be_focused()
    field.fill(key)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Runs")
    expect(page.get_by_test_id("session-tenant")).to_have_text("acme")
    expect(page.get_by_test_id("session-principal")).to_have_text(expect_principal)


def status_of(page):
    return page.locator("[data-testid=run-summary] [data-field=status]")


def start_run(page, who, agent, text, conversation=None):
    """Starts a run from the Agents page; answers its id from the run page."""
    page.get_by_role("link", name="Agents").click()
    form = page.locator(f"[data-agent={agent}]")
    form.get_by_label("Input for a new run").fill(text)
    if conversation:
        form.get_by_label("Conversation id (optional)").fill(conversation)
    form.get_by_role("button", name="Start run").click()
    expect(page.get_by_test_id("run-id")).to_be_visible(timeout=TIMEOUT)
    return page.get_by_test_id("run-id").inner_text()


def seed(page, agent, text, answer=None):
    """Starts a run through the page's session (the API with the cookie and
    the CSRF header) and, with `answer`, answers its pause."""
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "agentd_csrf")
    headers = {"X-CSRF-Token": csrf}
    run = page.request.post(BASE + f"/v1/agents/{agent}/runs", headers=headers,
                            data={"input": text, "wait": True}).json()
    if answer is not None and run["status"] == "paused":
        page.request.post(BASE + f"/v1/runs/{run['id']}/resume", headers=headers,
                          data={"answer": answer, "wait": True})
    return run["id"]


def screenshots(admin, user, run):
    """More runs of two principals, then the main pages as a reader of the
    README would see them."""
    for i, (agent, answer) in enumerate([("asker", "yes"), ("gated", {"approve": True}),
                                         ("broken", None), ("asker", None), ("gated", None)]):
        seed(admin, agent, f"ticket {100 + i}", answer)
    for i, (agent, answer) in enumerate([("asker", "later"), ("gated", {"approve": False}),
                                         ("broken", None), ("asker", None)]):
        seed(user, agent, f"order {200 + i}", answer)
    for path, name, ready in [("/console/runs", "runs", "#runs-table"),
                              ("/console/runs/" + run, "run", "#audit-table"),
                              ("/console/approvals", "approvals", ".inbox"),
                              ("/console/dead-letters", "dead-letters", "#dead-table"),
                              ("/console/spend", "spend", "#usage-principal"),
                              ("/console/agents", "agents", "#policies-h")]:
        goto(admin, "admin", path)
        expect(admin.locator(ready)).to_be_visible()
        shot(admin, name)


def main():
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        admin_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        admin_ctx.add_init_script(WATCH_CSP)
        admin = admin_ctx.new_page()
        admin.set_default_timeout(TIMEOUT)
        watch(admin, "admin")

        # Sign-in: a wrong key is refused on the page; the admin key signs in.
        goto(admin, "admin", "/console/approvals")
        expect(admin).to_have_url(BASE + "/console/sign-in?next=%2Fconsole%2Fapprovals")
        admin.get_by_label("API key or JWT").fill("agd_0000000000000000_wrong")
        admin.get_by_role("button", name="Sign in").click()
        expect(admin.get_by_test_id("sign-in-error")).to_contain_text("refused")
        admin.get_by_label("API key or JWT").fill(ADMIN_KEY)
        admin.get_by_role("button", name="Sign in").click()
        expect(admin.locator("h1")).to_have_text("Approvals")
        expect(admin.get_by_test_id("session-principal")).to_have_text("alice")
        expect(admin.get_by_test_id("session-roles")).to_have_text("admin")
        cookies = {c["name"]: c for c in admin_ctx.cookies()}
        assert cookies["agentd_session"]["httpOnly"], cookies
        assert cookies["agentd_session"]["sameSite"] == "Strict", cookies

        # A question: started from the Agents page in a conversation, found
        # in the inbox and answered there, while one tab shows the run and
        # another the conversation's next run, queued behind it. Both reach
        # `succeeded` live (the pages are never reloaded), the second with
        # its model's text streamed as it arrives.
        asker = start_run(admin, "admin", "asker", "the release", "release-1")
        expect(admin.get_by_test_id("pause-question")).to_have_text("ok?", timeout=TIMEOUT)
        writer = start_run(admin, "admin", "writer", "the notes", "release-1")
        expect(status_of(admin)).to_have_text("queued")
        expect(admin.get_by_test_id("live-state")).to_contain_text("Live")
        admin.evaluate("window.__notReloaded = true")
        admin.evaluate(RECORD_STREAMED)
        watcher = admin_ctx.new_page()
        watcher.set_default_timeout(TIMEOUT)
        watch(watcher, "watcher")
        goto(watcher, "watcher", "/console/runs/" + asker)
        expect(status_of(watcher)).to_have_text("paused")
        watcher.evaluate("window.__notReloaded = true")

        inbox = admin_ctx.new_page()
        inbox.set_default_timeout(TIMEOUT)
        watch(inbox, "inbox")
        goto(inbox, "inbox", "/console/approvals")
        item = inbox.locator(f"li[data-run-id='{asker}']")
        expect(item.get_by_test_id("pause-question")).to_have_text("ok?")
        item.get_by_label("Your answer").fill("ship it")
        item.get_by_role("button", name="Send answer").click()
        expect(item.get_by_test_id("answered")).to_be_visible()
        collect(inbox, "inbox")
        inbox.close()

        expect(status_of(watcher)).to_have_text("succeeded", timeout=TIMEOUT)
        assert watcher.evaluate("window.__notReloaded === true"), "the run page was reloaded"
        expect(watcher.locator("#timeline > li")).to_have_count(3)
        expect(watcher.locator("#timeline > li").nth(1)).to_contain_text("ship it")
        expect(watcher.get_by_test_id("run-output")).to_have_text("answer: ship it")
        collect(watcher, "watcher")
        watcher.close()
        out["asker_run"] = asker

        expect(status_of(admin)).to_have_text("succeeded", timeout=TIMEOUT)
        assert admin.evaluate("window.__notReloaded === true"), "the run page was reloaded"
        expect(admin.get_by_test_id("run-output")).to_have_text("Notes on the notes.")
        streamed = admin.evaluate("window.__streamed")
        assert "Notes on the notes." in streamed, streamed
        out["writer_run"] = writer

        # The conversation's runs, listed by its id.
        goto(admin, "admin", "/console/runs?conversation_id=release-1")
        expect(admin.locator("#runs-table tbody tr")).to_have_count(2)
        expect(admin.get_by_label("Conversation id")).to_have_value("release-1")

        # An approval: the inbox shows the tool call; approving it, then
        # following the link, the run page shows it continue to `succeeded`.
        gated = start_run(admin, "admin", "gated", "v7")
        expect(admin.get_by_test_id("pause-tool")).to_have_text("echo", timeout=TIMEOUT)
        admin.get_by_role("link", name="Approvals").click()
        item = admin.locator(f"li[data-run-id='{gated}']")
        expect(item.get_by_test_id("pause-tool")).to_have_text("echo")
        expect(item.get_by_test_id("pause-args")).to_contain_text('"text": "v7"')
        admin.evaluate("window.__notReloaded = true")
        item.get_by_role("button", name="Approve").click()
        item.get_by_test_id("watch-run").click()
        expect(admin.get_by_test_id("run-id")).to_have_text(gated)
        # The model's reply takes 1.2 s: the page follows the run's events.
        expect(admin.get_by_test_id("live-state")).to_contain_text("Live")
        expect(status_of(admin)).to_have_text("succeeded", timeout=TIMEOUT)
        assert admin.evaluate("window.__notReloaded === true"), "the console reloaded"
        expect(admin.locator("#timeline > li[data-kind=tool]")).to_contain_text("v7")
        expect(admin.get_by_test_id("run-output")).to_have_text("done: v7")
        expect(admin.locator("#audit-table")).to_contain_text("resumed")
        out["gated_run"] = gated

        # A rejection with a reason goes to the model as the tool's answer.
        # The input is markup: the page shows it as text, never as HTML.
        rejected = start_run(admin, "admin", "gated", "<i>v8</i>")
        expect(admin.get_by_test_id("pause-tool")).to_have_text("echo", timeout=TIMEOUT)
        expect(admin.get_by_test_id("run-input")).to_have_text("<i>v8</i>")
        expect(admin.locator("main i")).to_have_count(0)
        admin.get_by_label("Reason (sent to the model when rejecting)").fill("not on a Friday")
        admin.get_by_role("button", name="Reject").click()
        expect(status_of(admin)).to_have_text("succeeded", timeout=TIMEOUT)
        out["rejected_run"] = rejected

        # Runs list: the tenant's runs, never another tenant's; filters and
        # the run page of another tenant's run is the not-found page, exactly
        # like a run that does not exist.
        admin.get_by_role("link", name="Runs").click()
        expect(admin.locator(f"tr[data-run-id='{asker}']")).to_be_visible()
        expect(admin.locator(f"tr[data-run-id='{OTHER_RUN}']")).to_have_count(0)
        admin.get_by_label("Status").select_option("succeeded")
        admin.get_by_label("Agent").fill("asker")
        admin.get_by_role("button", name="Apply").click()
        expect(admin).to_have_url(BASE + "/console/runs?agent=asker&status=succeeded")
        expect(admin.locator("#runs-table tbody tr")).to_have_count(1)
        goto(admin, "admin", "/console/runs?since=2999-01-01T00%3A00%3A00.000Z")
        expect(admin.get_by_test_id("runs-empty")).to_be_visible()
        expect(admin.get_by_label("Created from")).not_to_have_value("")
        goto(admin, "admin", "/console/runs?until=2000-01-01T00%3A00%3A00.000Z")
        expect(admin.get_by_test_id("runs-empty")).to_be_visible()
        admin.get_by_role("link", name="Runs").click()
        expect(admin.locator(f"tr[data-run-id='{asker}']")).to_be_visible()
        goto(admin, "admin", "/console/runs/" + OTHER_RUN)
        expect(admin.locator("h1")).to_have_text("Run not found")
        foreign = admin.locator("main").inner_text()
        goto(admin, "admin", "/console/runs/" + str(uuid.uuid4()))
        expect(admin.locator("h1")).to_have_text("Run not found")
        assert admin.locator("main").inner_text() == foreign, "another tenant's run looks different"
        assert OTHER_RUN not in admin.content()

        # Dead letters as admin: the last error and a requeue.
        admin.get_by_role("link", name="Dead letters").click()
        row = admin.locator(f"tr[data-run-id='{DEAD_RUN}']")
        expect(row).to_contain_text("provider_error")
        row.get_by_role("button", name="Requeue").click()
        expect(row.get_by_test_id("requeued")).to_be_visible()
        expect(admin.get_by_test_id("status")).to_contain_text("requeued")

        admin.get_by_role("link", name="Spend").click()
        expect(admin.get_by_test_id("chart-day-cost")).to_be_visible()
        expect(admin.locator("#usage-agent")).to_contain_text("asker")
        expect(admin.get_by_test_id("budget-tenant")).to_contain_text("$5.00")
        admin.get_by_role("link", name="Agents").click()
        expect(admin.locator("[data-agent=broken] [data-testid=circuit]")).to_be_visible()
        collect(admin, "admin")

        # A user without admin: the dead letters, without their actions.
        user_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        user_ctx.add_init_script(WATCH_CSP)
        user = user_ctx.new_page()
        user.set_default_timeout(TIMEOUT)
        watch(user, "user")
        sign_in(user, "user", USER_KEY, "bob")
        user.get_by_role("link", name="Dead letters").click()
        expect(user.locator("#dead-table tbody tr").first).to_be_visible()
        expect(user.get_by_test_id("requeue-needs-admin")).to_be_visible()
        expect(user.get_by_role("button", name="Requeue")).to_have_count(0)
        expect(user.locator("#dead-table th", has_text="Action")).to_have_count(0)

        if SHOTS:
            screenshots(admin, user, gated)

        # Signing out ends the session: the console asks for a key again.
        user.get_by_role("button", name="Sign out").click()
        expect(user.locator("h1")).to_have_text("Sign in")
        goto(user, "user", "/console/dead-letters")
        expect(user).to_have_url(BASE + "/console/sign-in?next=%2Fconsole%2Fdead-letters")
        collect(user, "user")

        browser.close()
    assert not violations, violations
    out["pages"] = visited
    out["csp_violations"] = violations
    print(json.dumps(out))


def without_sign_in():
    """auth.mode = "none": the console opens as the API's default identity,
    without sign-in; a run's own page approves, forks and cancels; the
    page is usable from the keyboard."""
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        ctx.add_init_script(WATCH_CSP)
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT)
        watch(page, "none")
        goto(page, "none", "/console")
        expect(page.locator("h1")).to_have_text("Runs")
        expect(page.get_by_test_id("session-tenant")).to_have_text("default")
        expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
        goto(page, "none", "/console/sign-in")
        expect(page).to_have_url(BASE + "/console/runs")

        # Paging: 25 runs a page, the next through the cursor.
        expect(page.locator("#runs-table tbody tr")).to_have_count(25)
        page.get_by_role("link", name="Next page").click()
        expect(page).to_have_url(re.compile(r"/console/runs\?cursor="))
        expect(page.locator("#runs-table tbody tr")).to_have_count(5)
        expect(page.get_by_role("link", name="Next page")).to_have_count(0)
        page.get_by_role("link", name="First page").click()
        expect(page.locator("#runs-table tbody tr")).to_have_count(25)
        goto(page, "none", "/console/runs")

        # Keyboard: the skip link comes first and leads to the content;
        # the navigation is reachable with Tab and followed with Enter.
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Approvals")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text("Approvals")
        expect(page.locator("h1")).to_be_focused()

        # The run's page approves its tool call and follows it to the end.
        run = start_run(page, "none", "gated", "v1")
        expect(page.get_by_test_id("pause-tool")).to_have_text("echo", timeout=TIMEOUT)
        page.get_by_role("button", name="Approve").click()
        expect(status_of(page)).to_have_text("succeeded", timeout=TIMEOUT)
        out["approved_run"] = run

        # Fork from the first step: a new run, linked to this one, that asks
        # again; cancelling it ends it.
        page.get_by_role("button", name="Fork from step 0: keep the steps before it and run it again").click()
        expect(page.get_by_test_id("run-id")).not_to_have_text(run)
        expect(page.locator("[data-testid=run-summary] [data-field='forked from']")).to_contain_text("at step 0")
        fork = page.get_by_test_id("run-id").inner_text()
        expect(page.get_by_test_id("pause-tool")).to_have_text("echo", timeout=TIMEOUT)
        page.get_by_role("button", name="Cancel run").click()
        expect(status_of(page)).to_have_text("cancelled")
        expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
        out["fork"] = fork
        collect(page, "none")
        browser.close()
    assert not violations, violations
    out["pages"] = visited
    out["csp_violations"] = violations
    print(json.dumps(out))


if __name__ == "__main__":
    started = time.time()
    without_sign_in() if MODE == "none" else main()
    print(f"# {time.time() - started:.1f}s", file=sys.stderr)
