// agentd console: a small single-page app over the /v1 API, with no build
// step and no dependencies. Every piece of API text reaches the page through
// textContent (the h() helper), never innerHTML, and the page runs under a
// CSP without inline script or style.
"use strict";

(function () {
  const BASE = "/console";
  const PAGE = 25; // rows per page of every list
  const STATUSES = ["queued", "running", "paused", "succeeded", "failed", "cancelled", "dead"];
  const ACTIVE = ["queued", "running", "paused"];
  const FINAL = ["succeeded", "failed", "cancelled"];

  const main = document.getElementById("main");
  const statusBox = document.getElementById("status");
  const nav = document.getElementById("nav");
  const sessionBox = document.getElementById("session");

  let session = null; // {tenant, principal, roles, auth_mode, admin}
  let generation = 0; // bumped on each navigation: stale async renders stop
  let leaving = []; // what to close when the page changes (streams, timers)
  let firstRender = true;

  // ---------------------------------------------------------------- DOM

  /** Creates an element. attrs: class, text, on{event: fn}, dataset via
   *  "data-*", booleans set as properties; children: nodes, strings (as
   *  text), arrays, null/false (skipped). */
  function h(tag, attrs, ...children) {
    const svg = tag.startsWith("svg:");
    const el = svg
      ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
      : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") el.textContent = String(v);
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === "class") el.setAttribute("class", v);
      else if (!svg && (k === "value" || k === "checked" || k === "disabled" || k === "hidden" || k === "required" || k === "selected")) el[k] = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(el, c);
      else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  /** A visible message that is also announced by screen readers. */
  let announcedAt = 0;
  function announce(message, kind) {
    announcedAt = Date.now();
    clear(statusBox);
    if (!message) return;
    statusBox.appendChild(h("p", { class: "flash " + (kind || "info"), text: message }));
  }

  function errorBox(err, testid) {
    return h("div", { class: "flash error", role: "alert", "data-testid": testid || "error" }, describe(err));
  }

  function describe(err) {
    if (err instanceof ApiError) return err.message + (err.code ? " (" + err.code + ")" : "");
    return String(err && err.message ? err.message : err);
  }

  // ---------------------------------------------------------------- format

  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  function fmtCost(usd) {
    if (usd === null || usd === undefined) return "—";
    const n = Number(usd);
    if (n === 0) return "$0";
    if (Math.abs(n) >= 1) return "$" + n.toFixed(2);
    if (Math.abs(n) >= 0.01) return "$" + n.toFixed(4).replace(/0{1,2}$/, "");
    return "$" + (Math.abs(n) >= 1e-6 ? String(Number(n.toPrecision(2))) : n.toPrecision(2));
  }

  function fmtInt(n) {
    return Number(n || 0).toLocaleString("en-US");
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined || isNaN(ms)) return "—";
    if (ms < 1000) return Math.round(ms) + " ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + "m " + Math.round(s % 60) + "s";
    return Math.floor(m / 60) + "h " + (m % 60) + "m";
  }

  function tokens(usage) {
    if (!usage) return 0;
    return (usage.input_tokens || 0) + (usage.output_tokens || 0);
  }

  function shortId(id) {
    // UUID v7 ids share their leading (time) digits: the tail tells runs apart.
    return "…" + String(id).slice(-8);
  }

  /** JSON or text for a <pre>: strings as they are, the rest indented. */
  function pretty(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "string") return v;
    return JSON.stringify(v, null, 2);
  }

  function badge(status) {
    return h("span", { class: "badge s-" + status, "data-testid": "status-badge", text: status });
  }

  function runLink(id, label) {
    return h("a", { href: BASE + "/runs/" + encodeURIComponent(id), class: "mono", title: id, "aria-label": "run " + id, text: label || shortId(id) });
  }

  /** A datetime-local value (local time) from an RFC 3339 string, and back. */
  function toLocalInput(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
  }

  function fromLocalInput(v) {
    if (!v) return "";
    const d = new Date(v);
    return isNaN(d) ? "" : d.toISOString();
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const [k, ...v] = part.trim().split("=");
      if (k === name) return decodeURIComponent(v.join("="));
    }
    return null;
  }

  /** fetch() with the session cookie, the CSRF header on every change, and
   *  the API's error body turned into an ApiError. */
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && method !== "HEAD") {
      const token = cookie("agentd_csrf");
      if (token) headers["X-CSRF-Token"] = token;
    }
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (e) {
      throw new ApiError(0, "network", "The server could not be reached: " + e.message);
    }
    if (res.status === 204) return null;
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (!res.ok) {
      const e = (data && data.error) || {};
      const err = new ApiError(res.status, e.code || "http_" + res.status, e.message || res.statusText || "request failed");
      if (res.status === 401 && session && !path.startsWith(BASE + "/api/session")) {
        // The session expired or was revoked: back to the sign-in page.
        session = null;
        renderSession();
        navigate(BASE + "/sign-in?next=" + encodeURIComponent(location.pathname + location.search), true);
        announce("Your session ended; sign in again.", "error");
      }
      throw err;
    }
    return data;
  }

  function qs(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") u.set(k, v);
    const s = u.toString();
    return s ? "?" + s : "";
  }

  // ---------------------------------------------------------------- routing

  function navigate(url, replace) {
    if (replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
    route();
  }

  document.addEventListener("click", (e) => {
    const a = e.target.closest && e.target.closest("a");
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.target || a.hasAttribute("download") || a.origin !== location.origin) return;
    if (!a.pathname.startsWith(BASE) || a.pathname.startsWith(BASE + "/assets/")) return;
    if (a.hash && a.pathname === location.pathname) return;
    e.preventDefault();
    navigate(a.pathname + a.search);
  });
  window.addEventListener("popstate", route);

  const routes = [
    [/^\/?$/, runsPage, "runs"],
    [/^\/runs$/, runsPage, "runs"],
    [/^\/runs\/([^/]+)$/, runPage, "runs"],
    [/^\/approvals$/, approvalsPage, "approvals"],
    [/^\/dead-letters$/, deadLettersPage, "dead-letters"],
    [/^\/spend$/, spendPage, "spend"],
    [/^\/agents$/, agentsPage, "agents"],
    [/^\/sign-in$/, signInPage, null],
  ];

  async function route() {
    for (const fn of leaving) {
      try {
        fn();
      } catch (_) {
        /* a stream already closed */
      }
    }
    leaving = [];
    // A message outlives the page only when it was just made (it says what
    // led here: "Forked ...", "Signed in ...").
    if (Date.now() - announcedAt > 1500) clear(statusBox);
    const gen = ++generation;
    const ctx = {
      live: () => gen === generation,
      onLeave: (fn) => leaving.push(fn),
      params: new URLSearchParams(location.search),
    };
    let rest = location.pathname.slice(BASE.length).replace(/\/+$/, "");
    if (!session && rest !== "/sign-in") {
      try {
        session = await api("GET", BASE + "/api/session");
      } catch (err) {
        if (!ctx.live()) return;
        if (err.status === 401) {
          navigate(BASE + "/sign-in?next=" + encodeURIComponent(location.pathname + location.search), true);
        } else {
          page("Console unavailable", [errorBox(err)]);
        }
        return;
      }
      if (!ctx.live()) return;
    }
    renderSession();
    for (const [re, fn, navKey] of routes) {
      const m = rest.match(re);
      if (!m) continue;
      for (const a of nav.querySelectorAll("a")) {
        if (a.dataset.nav === navKey) a.setAttribute("aria-current", "page");
        else a.removeAttribute("aria-current");
      }
      try {
        await fn(ctx, ...m.slice(1).map(decodeURIComponent));
      } catch (err) {
        if (ctx.live()) page("Something went wrong", [errorBox(err)]);
      }
      return;
    }
    page("Page not found", [h("p", { text: "There is no such page in the console." }), h("p", {}, h("a", { href: BASE + "/runs", text: "Go to runs" }))], "not-found");
  }

  /** Replaces the main landmark with a titled page. */
  function page(title, children, testid) {
    document.title = title + " · agentd console";
    clear(main);
    const h1 = h("h1", { tabindex: "-1", id: "page-title", text: title });
    main.setAttribute("data-page", testid || "");
    append(main, [h1, children]);
    if (!firstRender) h1.focus({ preventScroll: false });
    firstRender = false;
    return main;
  }

  function renderSession() {
    clear(sessionBox);
    nav.hidden = !session;
    if (!session) return;
    append(sessionBox, [
      h("span", { class: "who", "data-testid": "session-identity" },
        h("span", { class: "label", text: "tenant " }), h("strong", { "data-testid": "session-tenant", text: session.tenant }),
        h("span", { class: "label", text: " · principal " }), h("strong", { "data-testid": "session-principal", text: session.principal }),
        h("span", { class: "label", text: " · roles " }), h("strong", { "data-testid": "session-roles", text: (session.roles || []).join(", ") || "none" })),
      session.auth_mode !== "none"
        ? h("button", { type: "button", class: "secondary", id: "sign-out", "data-testid": "sign-out", on: { click: signOut }, text: "Sign out" })
        : h("span", { class: "label", title: "auth.mode = none: no sign-in", text: " · auth none" }),
    ]);
  }

  async function signOut() {
    try {
      await api("DELETE", BASE + "/api/session");
    } catch (err) {
      announce("Sign-out failed: " + describe(err), "error");
      return;
    }
    session = null;
    renderSession();
    announce("Signed out.");
    navigate(BASE + "/sign-in", false);
  }

  // ---------------------------------------------------------------- sign-in

  async function signInPage(ctx) {
    // Under auth none there is nothing to sign in to.
    if (!session) {
      try {
        session = await api("GET", BASE + "/api/session");
      } catch (_) {
        session = null;
      }
      if (!ctx.live()) return;
    }
    const next = safeNext(ctx.params.get("next"));
    if (session) {
      navigate(next, true);
      return;
    }
    renderSession();
    const input = h("input", { id: "credential", name: "credential", type: "password", autocomplete: "off", required: true, spellcheck: "false", "aria-describedby": "credential-help" });
    const error = h("div", { id: "sign-in-error", "aria-live": "assertive" });
    const button = h("button", { type: "submit", id: "sign-in-submit", text: "Sign in" });
    const form = h("form", { class: "card narrow", id: "sign-in-form", novalidate: true },
      h("label", { for: "credential", text: "API key or JWT" }),
      input,
      h("p", { id: "credential-help", class: "muted", text: "An API key (agd_…) minted with `agentd keys create`, or a JWT from your identity provider. The session lasts until you sign out or the credential expires." }),
      error,
      button);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clear(error);
      const credential = input.value.trim();
      if (!credential) {
        error.appendChild(errorBox("Enter an API key or a JWT.", "sign-in-error"));
        input.focus();
        return;
      }
      button.disabled = true;
      try {
        session = await api("POST", BASE + "/api/session", { credential });
      } catch (err) {
        button.disabled = false;
        error.appendChild(errorBox(err.status === 401 ? "That credential was refused (" + err.code + ")." : err, "sign-in-error"));
        input.focus();
        return;
      }
      announce("Signed in as " + session.principal + " of " + session.tenant + ".");
      navigate(next, true);
    });
    page("Sign in", [form], "sign-in");
    input.focus();
  }

  function safeNext(next) {
    // Only a console path: never an open redirect.
    if (next && next.startsWith(BASE + "/") && !next.startsWith("//") && !next.startsWith(BASE + "/sign-in")) return next;
    return BASE + "/runs";
  }

  // ---------------------------------------------------------------- runs

  async function runsPage(ctx) {
    const p = ctx.params;
    const filters = {
      agent: p.get("agent") || "",
      status: p.get("status") || "",
      since: p.get("since") || "",
      until: p.get("until") || "",
      conversation_id: p.get("conversation_id") || "",
    };
    const cursor = p.get("cursor") || "";
    const agentNames = h("datalist", { id: "agent-names" });
    api("GET", "/v1/agents").then((d) => {
      for (const a of (d && d.items) || []) agentNames.appendChild(h("option", { value: a.name }));
    }, () => {});

    const field = (id, label, input) => h("div", { class: "field" }, h("label", { for: id, text: label }), input);
    const fAgent = h("input", { id: "f-agent", name: "agent", value: filters.agent, list: "agent-names", autocomplete: "off" });
    const fStatus = h("select", { id: "f-status", name: "status" },
      h("option", { value: "", text: "any" }),
      STATUSES.map((s) => h("option", { value: s, text: s, selected: s === filters.status })));
    const fSince = h("input", { id: "f-since", name: "since", type: "datetime-local", value: toLocalInput(filters.since) });
    const fUntil = h("input", { id: "f-until", name: "until", type: "datetime-local", value: toLocalInput(filters.until) });
    const fConv = h("input", { id: "f-conversation", name: "conversation_id", value: filters.conversation_id, autocomplete: "off" });
    const form = h("form", { class: "filters", id: "runs-filters", role: "search", "aria-label": "Filter runs" },
      field("f-agent", "Agent", fAgent), agentNames,
      field("f-status", "Status", fStatus),
      field("f-since", "Created from", fSince),
      field("f-until", "Created before", fUntil),
      field("f-conversation", "Conversation id", fConv),
      h("div", { class: "field actions" },
        h("button", { type: "submit", id: "apply-filters", text: "Apply" }),
        h("a", { href: BASE + "/runs", class: "button secondary", text: "Clear" })));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      navigate(BASE + "/runs" + qs({
        agent: fAgent.value.trim(),
        status: fStatus.value,
        since: fromLocalInput(fSince.value),
        until: fromLocalInput(fUntil.value),
        conversation_id: fConv.value.trim(),
      }));
    });
    const body = h("div", { id: "runs-body" }, h("p", { class: "muted", text: "Loading runs…" }));
    page("Runs", [form, body], "runs");

    let data;
    try {
      data = await api("GET", "/v1/runs" + qs(Object.assign({}, filters, { cursor, limit: PAGE })));
    } catch (err) {
      if (ctx.live()) clear(body).appendChild(errorBox(err, "runs-error"));
      return;
    }
    if (!ctx.live()) return;
    clear(body);
    if (!data.items.length) {
      body.appendChild(h("p", { class: "empty", "data-testid": "runs-empty", text: cursor ? "No more runs." : "No runs match these filters." }));
    } else {
      body.appendChild(table("runs-table", "Runs, newest first",
        ["Run", "Agent", "Status", "Principal", "Created", "Steps", "Tokens", "Cost"],
        data.items.map((r) => h("tr", { "data-run-id": r.id },
          h("td", {}, runLink(r.id)),
          h("td", { text: r.agent + (r.agent_version ? "@" + r.agent_version : "") }),
          h("td", {}, badge(r.status)),
          h("td", { text: r.principal }),
          h("td", {}, h("time", { datetime: r.created_at, text: fmtTime(r.created_at) })),
          h("td", { class: "num", text: fmtInt(r.steps) }),
          h("td", { class: "num", text: fmtInt(tokens(r.usage)) }),
          h("td", { class: "num", text: fmtCost(r.cost_usd) }))),
        ["", "", "", "", "", "num", "num", "num"]));
    }
    append(body, [pager(BASE + "/runs", p, cursor, data.next_cursor, "runs")]);
  }

  /** A table with a caption (for screen readers) and header cells. */
  function table(testid, caption, heads, rows, classes) {
    return h("div", { class: "table-wrap" },
      h("table", { "data-testid": testid, id: testid },
        h("caption", { class: "sr-only", text: caption }),
        h("thead", {}, h("tr", {}, heads.map((t, i) => h("th", { scope: "col", class: classes && classes[i] ? classes[i] : null, text: t })))),
        h("tbody", {}, rows)));
  }

  /** First page / next page links that keep the page's other query params. */
  function pager(path, params, cursor, next, testid) {
    const links = [];
    if (cursor) {
      const first = new URLSearchParams(params);
      first.delete("cursor");
      const s = first.toString();
      links.push(h("a", { href: path + (s ? "?" + s : ""), class: "button secondary", "data-testid": testid + "-first", text: "First page" }));
    }
    if (next) {
      const n = new URLSearchParams(params);
      n.set("cursor", next);
      links.push(h("a", { href: path + "?" + n.toString(), class: "button secondary", rel: "next", "data-testid": testid + "-next", id: testid + "-next", text: "Next page" }));
    }
    return links.length ? h("nav", { class: "pager", "aria-label": "Pages" }, links) : null;
  }

  // ---------------------------------------------------------------- a run

  async function runPage(ctx, id) {
    let run;
    try {
      run = await api("GET", "/v1/runs/" + encodeURIComponent(id));
    } catch (err) {
      if (!ctx.live()) return;
      // A bad id, a missing run and another tenant's run look the same.
      if (err.status === 404 || err.status === 400) {
        page("Run not found", [
          h("p", { "data-testid": "run-not-found", text: "There is no run with this id in your tenant." }),
          h("p", {}, h("a", { href: BASE + "/runs", text: "Back to runs" }))], "run-not-found");
        return;
      }
      throw err;
    }
    if (!ctx.live()) return;

    const summary = h("section", { "aria-labelledby": "summary-h", class: "card" });
    const actions = h("div", { class: "actions", id: "run-actions" });
    const pausePanel = h("section", { id: "pause-panel", "aria-live": "polite" });
    const timeline = h("ol", { class: "timeline", id: "timeline", "data-testid": "timeline", "aria-label": "Steps" });
    const liveNote = h("p", { class: "muted", id: "live-state", "data-testid": "live-state" });
    const auditBox = h("div", { id: "audit" });
    const deliveriesBox = h("div", { id: "deliveries" });
    const steps = new Map(); // index -> step
    page("Run " + shortId(run.id), [
      h("p", { class: "mono muted", "data-testid": "run-id", text: run.id }),
      actions,
      pausePanel,
      summary,
      h("section", { "aria-labelledby": "timeline-h" },
        h("h2", { id: "timeline-h", text: "Timeline" }), liveNote, timeline),
      h("section", { "aria-labelledby": "audit-h" }, h("h2", { id: "audit-h", text: "Audit trail" }), auditBox),
      h("section", { "aria-labelledby": "deliveries-h" }, h("h2", { id: "deliveries-h", text: "Webhook deliveries" }), deliveriesBox),
    ], "run");

    function update(next) {
      run = next;
      renderSummary();
      renderActions();
      renderPause();
    }

    function renderSummary() {
      const end = FINAL.includes(run.status) || run.status === "dead" ? new Date(run.updated_at) : new Date();
      const rows = [
        ["Status", badge(run.status)],
        ["Agent", run.agent + (run.agent_version ? "@" + run.agent_version : "")],
        ["Principal", run.principal],
        ["Conversation", run.conversation_id ? h("a", { href: BASE + "/runs?conversation_id=" + encodeURIComponent(run.conversation_id), text: run.conversation_id }) : "—"],
        ["Created", fmtTime(run.created_at)],
        ["Updated", fmtTime(run.updated_at)],
        ["Duration", fmtDuration(end - new Date(run.created_at))],
        ["Steps", fmtInt(run.steps)],
        ["Attempts", fmtInt(run.attempt)],
        ["Tokens", fmtInt(run.usage.input_tokens) + " in · " + fmtInt(run.usage.output_tokens) + " out"],
        ["Cost", fmtCost(run.cost_usd)],
      ];
      if (run.forked_from) rows.push(["Forked from", [runLink(run.forked_from.run_id), " at step " + run.forked_from.step]]);
      if (run.error) rows.push(["Error", h("span", { class: "err", "data-testid": "run-error" }, h("code", { text: run.error.code }), " " + run.error.message)]);
      clear(summary);
      append(summary, [
        h("h2", { id: "summary-h", text: "Summary" }),
        h("dl", { class: "grid", "data-testid": "run-summary" }, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", { "data-field": k.toLowerCase() }, v)])),
        h("div", { class: "io" },
          h("div", {}, h("h3", { text: "Input" }), h("pre", { "data-testid": "run-input", text: pretty(run.input) })),
          h("div", {}, h("h3", { text: "Output" }), h("pre", { "data-testid": "run-output", text: pretty(run.output_json !== undefined && run.output_json !== null ? run.output_json : run.output) }))),
        run.metadata !== undefined && run.metadata !== null ? [h("h3", { text: "Metadata" }), h("pre", { text: pretty(run.metadata) })] : null,
      ]);
    }

    function renderActions() {
      clear(actions);
      if (ACTIVE.includes(run.status)) {
        actions.appendChild(h("button", { type: "button", class: "danger", id: "cancel-run", "data-testid": "cancel-run", text: "Cancel run", on: { click: cancel } }));
      }
      if (run.status === "dead" && session.admin) {
        actions.appendChild(h("button", { type: "button", id: "requeue-run", text: "Requeue", on: { click: requeue } }));
      }
      // Fork: keep steps [0, N) and execute from N.
      const from = h("input", { id: "fork-from", type: "number", min: "0", max: String(run.steps), value: String(run.steps), class: "short" });
      const form = h("form", { class: "inline", id: "fork-form", "aria-label": "Fork this run" },
        h("label", { for: "fork-from", text: "Fork from step" }), from,
        h("button", { type: "submit", class: "secondary", id: "fork-submit", text: "Fork" }));
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        fork(Number(from.value));
      });
      actions.appendChild(form);
    }

    async function cancel() {
      try {
        update(await api("POST", "/v1/runs/" + encodeURIComponent(run.id) + "/cancel"));
        announce("Run cancelled.");
        loadAudit();
      } catch (err) {
        announce("Cancel failed: " + describe(err), "error");
      }
    }

    async function requeue() {
      try {
        update(await api("POST", "/v1/dead-letters/" + encodeURIComponent(run.id) + "/requeue"));
        announce("Run requeued.");
        follow();
      } catch (err) {
        announce("Requeue failed: " + describe(err), "error");
      }
    }

    async function fork(fromStep) {
      try {
        const forked = await api("POST", "/v1/runs/" + encodeURIComponent(run.id) + "/fork", { from_step: fromStep });
        announce("Forked from step " + fromStep + " as run " + forked.id + ".");
        navigate(BASE + "/runs/" + encodeURIComponent(forked.id));
      } catch (err) {
        announce("Fork failed: " + describe(err), "error");
      }
    }

    function renderPause() {
      clear(pausePanel);
      if (run.status !== "paused" || !run.pause) return;
      pausePanel.appendChild(pauseForm(run, (next) => {
        update(next);
        follow();
      }));
    }

    // -- timeline
    function stepItem(index) {
      let li = timeline.querySelector('li[data-index="' + index + '"]');
      if (!li) {
        li = h("li", { "data-index": String(index), class: "step" });
        // Keep the list in index order whatever order events arrive in.
        const after = [...timeline.children].find((c) => Number(c.dataset.index) > index);
        timeline.insertBefore(li, after || null);
      }
      return li;
    }

    function renderStep(step) {
      steps.set(step.index, step);
      const li = clear(stepItem(step.index));
      li.className = "step k-" + step.kind + " st-" + step.status;
      li.setAttribute("data-status", step.status);
      li.setAttribute("data-kind", step.kind);
      const kind = { llm: "model call", tool: "tool call", human: "human" }[step.kind] || step.kind;
      const meta = [fmtTime(step.started_at), fmtDuration(step.duration_ms)];
      if (step.usage) meta.push(fmtInt(step.usage.input_tokens) + " in / " + fmtInt(step.usage.output_tokens) + " out tokens");
      if (step.attempt > 1) meta.push("attempt " + step.attempt);
      append(li, [
        h("div", { class: "step-head" },
          h("span", { class: "idx", text: "#" + step.index }),
          h("strong", { text: kind }), " ", h("span", { class: "mono", text: step.name }), " ",
          h("span", { class: "badge st " + step.status, text: step.status }),
          h("span", { class: "muted meta", text: meta.join(" · ") }),
          h("button", { type: "button", class: "link small", "data-testid": "fork-here", "aria-label": "Fork from step " + step.index + ": keep the steps before it and run it again", text: "Fork from here", on: { click: () => fork(step.index) } })),
        stepBody(step),
      ]);
    }

    function stepBody(step) {
      const out = [];
      if (step.kind === "llm") {
        const o = step.output || {};
        if (o.content) out.push(h("div", { class: "assistant" }, h("span", { class: "label", text: "assistant" }), h("p", { class: "content", text: o.content })));
        for (const c of o.tool_calls || []) {
          out.push(h("div", { class: "call" }, h("span", { class: "label", text: "calls " }), h("code", { text: c.name }), h("pre", { text: pretty(c.args) })));
        }
        if (step.input !== null && step.input !== undefined) out.push(details("Request", step.input));
      } else if (step.kind === "human") {
        const inp = step.input && typeof step.input === "object" ? step.input : {};
        if (inp.approval) {
          out.push(h("div", {}, h("span", { class: "label", text: "approval of " }), h("code", { text: inp.approval.tool }), h("pre", { text: pretty(inp.approval.args) })));
        } else {
          out.push(h("div", {}, h("span", { class: "label", text: "question " }), h("p", { class: "content", text: pretty(inp.question !== undefined ? inp.question : step.input) })));
        }
        out.push(h("div", {}, h("span", { class: "label", text: "answer " }), h("p", { class: "content", text: step.status === "waiting" ? "(waiting)" : pretty(step.output) })));
      } else {
        out.push(h("div", {}, h("span", { class: "label", text: "input" }), h("pre", { text: pretty(step.input) })));
        if (step.status !== "failed" || step.output !== null) out.push(h("div", {}, h("span", { class: "label", text: "output" }), h("pre", { text: pretty(step.output) })));
      }
      if (step.error) out.push(h("p", { class: "err" }, h("code", { text: step.error.code }), " " + step.error.message));
      return h("div", { class: "step-body" }, out);
    }

    function startedStep(ev) {
      if (steps.has(ev.index)) return;
      const li = clear(stepItem(ev.index));
      li.className = "step running k-" + ev.kind;
      li.setAttribute("data-status", "running");
      append(li, [
        h("div", { class: "step-head" },
          h("span", { class: "idx", text: "#" + ev.index }),
          h("strong", { text: { llm: "model call", tool: "tool call", human: "human" }[ev.kind] || ev.kind }), " ",
          h("span", { class: "mono", text: ev.name }), " ", h("span", { class: "badge st running", text: "running" })),
        h("div", { class: "step-body" }, h("p", { class: "content streaming", "data-testid": "streamed", "aria-live": "off" })),
      ]);
    }

    function token(ev) {
      if (steps.has(ev.index)) return;
      let li = timeline.querySelector('li[data-index="' + ev.index + '"]');
      if (!li) {
        startedStep({ index: ev.index, kind: "llm", name: "" });
        li = timeline.querySelector('li[data-index="' + ev.index + '"]');
      }
      const p = li.querySelector(".streaming");
      if (p) p.textContent += ev.text;
    }

    // -- live updates: SSE while the run moves, a poll while it is paused
    let source = null;
    let poll = null;
    function stopLive() {
      if (source) source.close();
      source = null;
      if (poll) clearTimeout(poll);
      poll = null;
    }
    ctx.onLeave(stopLive);

    function follow() {
      stopLive();
      if (!ctx.live()) return;
      if (FINAL.includes(run.status) || run.status === "dead") {
        liveNote.textContent = "";
        return;
      }
      if (run.status === "paused") {
        liveNote.textContent = "Paused: waiting for an answer.";
        // Someone may answer elsewhere (the inbox, the API): notice it.
        poll = setTimeout(async function tick() {
          try {
            const r = await api("GET", "/v1/runs/" + encodeURIComponent(run.id));
            if (!ctx.live()) return;
            if (r.status !== "paused") {
              update(r);
              loadSteps();
              loadAudit();
              follow();
              return;
            }
          } catch (_) {
            /* try again */
          }
          if (ctx.live()) poll = setTimeout(tick, 1500);
        }, 1500);
        return;
      }
      liveNote.textContent = "Live: following the run's events.";
      source = new EventSource("/v1/runs/" + encodeURIComponent(run.id) + "/events", { withCredentials: true });
      const data = (e) => {
        try {
          return JSON.parse(e.data);
        } catch (_) {
          return null;
        }
      };
      source.addEventListener("run.status", (e) => {
        const d = data(e);
        if (d && d.status && d.status !== run.status) update(Object.assign({}, run, { status: d.status }));
      });
      source.addEventListener("step.started", (e) => {
        const d = data(e);
        if (d) startedStep(d);
      });
      source.addEventListener("token", (e) => {
        const d = data(e);
        if (d) token(d);
      });
      source.addEventListener("step.completed", (e) => {
        const d = data(e);
        if (d) renderStep(d);
      });
      source.addEventListener("run.finished", (e) => {
        const d = data(e);
        // The stream ends here; EventSource would reconnect and replay it.
        stopLive();
        if (d) update(d);
        loadSteps();
        loadAudit();
        loadDeliveries();
        follow();
        announce("Run " + shortId(run.id) + " is " + run.status + ".");
      });
      source.onerror = () => {
        if (source && source.readyState === EventSource.CLOSED) {
          liveNote.textContent = "Live updates stopped; reload the page to follow the run.";
        }
      };
    }

    async function loadSteps() {
      // The journal, page by page (a run's steps are bounded by max_steps).
      let after = null;
      for (let i = 0; i < 50; i++) {
        let d;
        try {
          d = await api("GET", "/v1/runs/" + encodeURIComponent(run.id) + "/steps" + qs({ after, limit: 200 }));
        } catch (err) {
          if (ctx.live()) timeline.parentNode.appendChild(errorBox(err, "steps-error"));
          return;
        }
        if (!ctx.live()) return;
        for (const s of d.items) renderStep(s);
        if (!d.next_cursor) break;
        after = d.next_cursor;
      }
      if (!steps.size && !timeline.children.length) liveNote.textContent = liveNote.textContent || "No steps yet.";
    }

    async function loadAudit() {
      try {
        const d = await api("GET", "/v1/audit" + qs({ run_id: run.id, limit: 100 }));
        if (!ctx.live()) return;
        clear(auditBox);
        if (!d.items.length) {
          auditBox.appendChild(h("p", { class: "empty", text: "No audit entries you may see." }));
          return;
        }
        auditBox.appendChild(table("audit-table", "Audit trail, newest first", ["Time", "Actor", "Kind", "Details"],
          d.items.map((a) => h("tr", {},
            h("td", {}, h("time", { datetime: a.time, text: fmtTime(a.time) })),
            h("td", { text: a.actor }),
            h("td", {}, h("code", { text: a.kind })),
            h("td", {}, a.details === null || a.details === undefined ? "—" : h("code", { class: "wrap", text: JSON.stringify(a.details) }))))));
      } catch (err) {
        if (ctx.live()) clear(auditBox).appendChild(errorBox(err, "audit-error"));
      }
    }

    async function loadDeliveries() {
      try {
        const d = await api("GET", "/v1/runs/" + encodeURIComponent(run.id) + "/deliveries" + qs({ limit: 100 }));
        if (!ctx.live()) return;
        clear(deliveriesBox);
        if (!d.items.length) {
          deliveriesBox.appendChild(h("p", { class: "empty", text: "No completion webhooks for this run." }));
          return;
        }
        deliveriesBox.appendChild(table("deliveries-table", "Webhook deliveries, oldest first", ["Event", "URL", "Status", "Attempts", "Last answer", "Next attempt / delivered"],
          d.items.map((x) => h("tr", {},
            h("td", {}, h("code", { text: x.event })),
            h("td", { class: "wrap", text: x.url }),
            h("td", {}, h("span", { class: "badge d-" + x.status, text: x.status })),
            h("td", { class: "num", text: fmtInt(x.attempts) }),
            h("td", { text: [x.last_status_code, x.last_error].filter((v) => v !== null && v !== undefined).join(" ") || "—" }),
            h("td", { text: x.delivered_at ? fmtTime(x.delivered_at) : fmtTime(x.next_attempt_at) })))));
      } catch (err) {
        if (ctx.live()) clear(deliveriesBox).appendChild(errorBox(err, "deliveries-error"));
      }
    }

    update(run);
    await loadSteps();
    follow();
    loadAudit();
    loadDeliveries();
  }

  /** The answer form of a paused run: approve / reject a tool call, or
   *  answer a question. onDone gets the run as the resume returned it. */
  function pauseForm(run, onDone) {
    const p = run.pause;
    const uid = "p-" + run.id;
    const error = h("div", { "aria-live": "assertive" });
    const url = "/v1/runs/" + encodeURIComponent(run.id) + "/resume";
    async function send(answer, what, buttons) {
      clear(error);
      buttons.forEach((b) => (b.disabled = true));
      try {
        const next = await api("POST", url, { answer });
        announce(what + ": run " + shortId(run.id) + " continues.");
        onDone(next);
      } catch (err) {
        buttons.forEach((b) => (b.disabled = false));
        error.appendChild(errorBox(err, "resume-error"));
      }
    }
    if (p.tool) {
      const reason = h("input", { id: uid + "-reason", class: "wide", autocomplete: "off" });
      const approve = h("button", { type: "button", "data-testid": "approve", text: "Approve" });
      const reject = h("button", { type: "button", class: "danger", "data-testid": "reject", text: "Reject" });
      approve.addEventListener("click", () => send({ approve: true }, "Approved", [approve, reject]));
      reject.addEventListener("click", () => {
        const answer = { approve: false };
        if (reason.value.trim()) answer.reason = reason.value.trim();
        send(answer, "Rejected", [approve, reject]);
      });
      return h("div", { class: "pause card", "data-testid": "pause" },
        h("h2", { text: "Approval needed" }),
        h("p", {}, "The run waits to call ", h("code", { "data-testid": "pause-tool", text: p.tool }), ":"),
        h("pre", { "data-testid": "pause-args", text: pretty(p.args) }),
        h("div", { class: "field" }, h("label", { for: uid + "-reason", text: "Reason (sent to the model when rejecting)" }), reason),
        h("div", { class: "actions" }, approve, reject),
        error);
    }
    const answer = h("textarea", { id: uid + "-answer", rows: "2", class: "wide", required: true });
    const button = h("button", { type: "submit", "data-testid": "answer", text: "Send answer" });
    const form = h("form", { class: "pause card", "data-testid": "pause" },
      h("h2", { text: "Question" }),
      h("p", { class: "question", "data-testid": "pause-question", text: p.question }),
      h("div", { class: "field" }, h("label", { for: uid + "-answer", text: "Your answer" }), answer),
      h("div", { class: "actions" }, button),
      error);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!answer.value.trim()) {
        clear(error).appendChild(errorBox("Write an answer first.", "resume-error"));
        answer.focus();
        return;
      }
      send(answer.value, "Answered", [button]);
    });
    return form;
  }

  // ---------------------------------------------------------------- approvals

  async function approvalsPage(ctx) {
    const cursor = ctx.params.get("cursor") || "";
    const body = h("div", { id: "approvals-body" }, h("p", { class: "muted", text: "Loading paused runs…" }));
    page("Approvals", [h("p", { class: "muted", text: "Every paused run of the tenant: a question for a human, or a tool call waiting for approval." }), body], "approvals");
    let data;
    try {
      data = await api("GET", "/v1/runs" + qs({ status: "paused", limit: PAGE, cursor }));
    } catch (err) {
      if (ctx.live()) clear(body).appendChild(errorBox(err, "approvals-error"));
      return;
    }
    if (!ctx.live()) return;
    clear(body);
    if (!data.items.length) body.appendChild(h("p", { class: "empty", "data-testid": "approvals-empty", text: "Nothing waits for an answer." }));
    const list = h("ul", { class: "inbox", "data-testid": "approvals-list" });
    for (const run of data.items) {
      const li = h("li", { class: "card", "data-run-id": run.id });
      const head = h("div", { class: "inbox-head" },
        runLink(run.id), " ", h("strong", { text: run.agent }), " ",
        h("span", { class: "muted", text: "by " + run.principal + " · paused " + fmtTime(run.updated_at) }));
      if (run.pause) {
        append(li, [head, pauseForm(run, (next) => {
          clear(li);
          append(li, [head, h("p", { class: "done", "data-testid": "answered" },
            "Answered; the run is " + next.status + ". ",
            h("a", { href: BASE + "/runs/" + encodeURIComponent(run.id), "data-testid": "watch-run", text: "Watch it continue" }))]);
          li.querySelector("a[data-testid=watch-run]").focus();
        })]);
      } else {
        append(li, [head, h("p", { class: "muted", text: "Paused (no question recorded)." })]);
      }
      list.appendChild(li);
    }
    if (data.items.length) body.appendChild(list);
    append(body, [pager(BASE + "/approvals", ctx.params, cursor, data.next_cursor, "approvals")]);
  }

  // ---------------------------------------------------------------- dead letters

  async function deadLettersPage(ctx) {
    const cursor = ctx.params.get("cursor") || "";
    const body = h("div", { id: "dead-body" }, h("p", { class: "muted", text: "Loading dead letters…" }));
    page("Dead letters", [
      h("p", { class: "muted", text: "Runs that ran out of attempts. Requeueing gives a run a fresh set of attempts, continuing from its journal." }),
      session.admin ? null : h("p", { class: "note", "data-testid": "requeue-needs-admin", text: "Requeueing needs role admin: you can read this list." }),
      body], "dead-letters");
    let data;
    try {
      data = await api("GET", "/v1/dead-letters" + qs({ limit: PAGE, cursor }));
    } catch (err) {
      if (ctx.live()) clear(body).appendChild(errorBox(err, "dead-error"));
      return;
    }
    if (!ctx.live()) return;
    clear(body);
    if (!data.items.length) {
      body.appendChild(h("p", { class: "empty", "data-testid": "dead-empty", text: "No dead letters." }));
    } else {
      const heads = ["Run", "Agent", "Principal", "Died", "Attempts", "Last error"];
      if (session.admin) heads.push("Action");
      body.appendChild(table("dead-table", "Dead runs, newest first", heads, data.items.map((r) => {
        const cell = h("td", {});
        if (session.admin) {
          const b = h("button", { type: "button", "data-testid": "requeue", "aria-label": "Requeue run " + r.id, text: "Requeue" });
          b.addEventListener("click", async () => {
            b.disabled = true;
            try {
              const next = await api("POST", "/v1/dead-letters/" + encodeURIComponent(r.id) + "/requeue");
              clear(cell).appendChild(h("span", { "data-testid": "requeued" }, badge(next.status), " ", runLink(r.id, "follow")));
              announce("Run " + shortId(r.id) + " requeued.");
            } catch (err) {
              b.disabled = false;
              announce("Requeue failed: " + describe(err), "error");
            }
          });
          cell.appendChild(b);
        }
        return h("tr", { "data-run-id": r.id },
          h("td", {}, runLink(r.id)),
          h("td", { text: r.agent }),
          h("td", { text: r.principal }),
          h("td", {}, h("time", { datetime: r.updated_at, text: fmtTime(r.updated_at) })),
          h("td", { class: "num", text: fmtInt(r.attempt) }),
          h("td", { class: "wrap" }, r.error ? [h("code", { text: r.error.code }), " " + r.error.message] : "—"),
          session.admin ? cell : null);
      }), ["", "", "", "", "num", "", ""]));
    }
    append(body, [pager(BASE + "/dead-letters", ctx.params, cursor, data.next_cursor, "dead")]);
  }

  // ---------------------------------------------------------------- spend

  async function spendPage(ctx) {
    const ranges = { "7d": 7, "30d": 30, "90d": 90 };
    const range = ranges[ctx.params.get("range")] ? ctx.params.get("range") : "30d";
    const now = new Date();
    const since = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - ranges[range] + 1));
    const rangeNav = h("nav", { class: "tabs", "aria-label": "Period" }, Object.keys(ranges).map((r) =>
      h("a", { href: BASE + "/spend?range=" + r, "aria-current": r === range ? "true" : null, text: "Last " + ranges[r] + " days" })));
    const budgets = h("section", { "aria-labelledby": "budgets-h" }, h("h2", { id: "budgets-h", text: "Budgets" }), h("p", { class: "muted", text: "Loading…" }));
    const groups = h("div", { id: "spend-groups" }, h("p", { class: "muted", text: "Loading usage…" }));
    page("Spend", [rangeNav, h("p", { class: "muted", text: "Runs created since " + since.toISOString().slice(0, 10) + " (UTC), whatever their status." }), budgets, groups], "spend");

    const usage = (g) => api("GET", "/v1/usage" + qs({ group_by: g, since: since.toISOString() }));
    const [byDay, byAgent, byPrincipal, bud] = await Promise.allSettled([usage("day"), usage("agent"), usage("principal"), api("GET", "/v1/budgets")]);
    if (!ctx.live()) return;

    clear(budgets).appendChild(h("h2", { id: "budgets-h", text: "Budgets" }));
    if (bud.status === "rejected") budgets.appendChild(errorBox(bud.reason, "budgets-error"));
    else {
      const b = bud.value || {};
      const meters = [];
      if (b.tenant) meters.push(budgetMeter("Tenant " + session.tenant, b.tenant, "budget-tenant"));
      if (b.principal) meters.push(budgetMeter("Principal " + (b.principal.principal || session.principal), b.principal, "budget-principal"));
      budgets.appendChild(meters.length ? h("div", { class: "meters" }, meters) : h("p", { class: "empty", text: "No budget applies to you: neither [tenants] nor [principals] sets one." }));
    }

    clear(groups);
    const failed = (res) => (res.status === "rejected" ? errorBox(res.reason, "usage-error") : null);
    append(groups, [failed(byAgent), failed(byPrincipal), failed(byDay)]);
    const ranked = (res) => (res.status === "fulfilled" ? res.value.items.slice().sort((a, b) => b.cost_usd - a.cost_usd || b.runs - a.runs) : []);
    const agents = ranked(byAgent);
    const principals = ranked(byPrincipal);
    const days = byDay.status === "fulfilled" ? byDay.value.items : [];
    const filled = fillDays(days, since, now);
    if (byDay.status === "fulfilled") {
      const t = byDay.value.total;
      groups.appendChild(h("p", { "data-testid": "spend-total" }, "Total: ", h("strong", { text: fmtCost(t.cost_usd) }),
        " · " + fmtInt(t.input_tokens + t.output_tokens) + " tokens · " + fmtInt(t.runs) + " runs (" + fmtInt(t.failed) + " failed or dead)"));
    }
    append(groups, [
      h("section", { "aria-labelledby": "charts-h" },
        h("h2", { id: "charts-h", class: "sr-only", text: "Charts" }),
        h("div", { class: "charts" },
          agents.length ? barChart("Cost by agent (USD)", agents.map((r) => [r.key, r.cost_usd]), fmtCost, "chart-agent") : null,
          principals.length ? barChart("Cost by principal (USD)", principals.map((r) => [r.key, r.cost_usd]), fmtCost, "chart-principal") : null,
          byDay.status === "fulfilled" ? columnChart("Cost per day (USD)", filled.map((d) => [d.key, d.cost_usd]), fmtCost, "chart-day-cost") : null,
          byDay.status === "fulfilled" ? columnChart("Tokens per day", filled.map((d) => [d.key, d.input_tokens + d.output_tokens]), fmtInt, "chart-day-tokens") : null)),
      h("section", { "aria-labelledby": "agent-h" }, h("h2", { id: "agent-h", text: "By agent" }), usageTable("usage-agent", "Agent", agents)),
      h("section", { "aria-labelledby": "principal-h" }, h("h2", { id: "principal-h", text: "By principal" }), usageTable("usage-principal", "Principal", principals)),
      h("section", { "aria-labelledby": "day-h" }, h("h2", { id: "day-h", text: "By day" }), usageTable("usage-day", "Day", days)),
    ]);
  }

  /** Days of the range without runs count as zero, so the chart is a calendar. */
  function fillDays(items, since, now) {
    const by = new Map(items.map((r) => [r.key, r]));
    const out = [];
    for (let d = new Date(since); d <= now; d = new Date(d.getTime() + 86400000)) {
      const key = d.toISOString().slice(0, 10);
      out.push(by.get(key) || { key, runs: 0, failed: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 });
    }
    return out;
  }

  function budgetMeter(label, b, testid) {
    const spent = Number(b.spent_usd || 0);
    const limit = Number(b.limit_usd || 0);
    const share = limit > 0 ? spent / limit : 0;
    const id = testid + "-meter";
    return h("div", { class: "meter card", "data-testid": testid },
      h("label", { for: id, text: label }),
      h("meter", { id, min: "0", max: String(limit || 1), low: String(limit * 0.8), high: String(limit * 0.95), optimum: "0", value: String(Math.min(spent, limit || spent)) }),
      h("p", {}, h("strong", { text: fmtCost(spent) }), " of " + fmtCost(limit) + " (" + Math.round(share * 100) + "%) this " + (b.period || "period") + (b.period_start ? ", since " + fmtTime(b.period_start) : "")));
  }

  function usageTable(testid, keyLabel, items) {
    if (!items.length) return h("p", { class: "empty", text: "No runs in this period." });
    return table(testid, "Usage " + keyLabel.toLowerCase(), [keyLabel, "Runs", "Failed", "Input tokens", "Output tokens", "Cost"],
      items.map((r) => h("tr", {},
        h("td", { text: r.key }),
        h("td", { class: "num", text: fmtInt(r.runs) }),
        h("td", { class: "num", text: fmtInt(r.failed) }),
        h("td", { class: "num", text: fmtInt(r.input_tokens) }),
        h("td", { class: "num", text: fmtInt(r.output_tokens) }),
        h("td", { class: "num", text: fmtCost(r.cost_usd) }))),
      ["", "num", "num", "num", "num", "num"]);
  }

  /** A vertical bar chart (one column per day) as SVG; the table below it
   *  carries the same numbers for screen readers. */
  function columnChart(title, points, fmt, testid) {
    const W = 560, H = 200, pad = { l: 8, r: 8, t: 22, b: 28 };
    const max = Math.max(0, ...points.map((p) => p[1]));
    const bw = (W - pad.l - pad.r) / Math.max(points.length, 1);
    const svg = h("svg:svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img", "aria-label": title + ", peak " + fmt(max), "data-testid": testid },
      h("svg:title", { text: title }),
      h("svg:text", { x: pad.l, y: 14, class: "chart-title", text: title + " · peak " + fmt(max) }),
      h("svg:line", { x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b, class: "axis" }));
    points.forEach(([key, v], i) => {
      const bh = max > 0 ? (v / max) * (H - pad.t - pad.b) : 0;
      const x = pad.l + i * bw + bw * 0.12;
      svg.appendChild(h("svg:rect", { x: x.toFixed(1), y: (H - pad.b - bh).toFixed(1), width: Math.max(1, bw * 0.76).toFixed(1), height: bh.toFixed(1), class: "bar" },
        h("svg:title", { text: key + ": " + fmt(v) })));
    });
    // Label the first, middle and last day.
    const marks = points.length > 2 ? [0, Math.floor(points.length / 2), points.length - 1] : points.map((_, i) => i);
    for (const i of marks) {
      svg.appendChild(h("svg:text", { x: (pad.l + i * bw + bw / 2).toFixed(1), y: H - 10, class: "tick", "text-anchor": "middle", text: points[i][0].slice(5) }));
    }
    return h("figure", {}, svg);
  }

  /** Horizontal bars, one per key, largest first. */
  function barChart(title, points, fmt, testid) {
    const shown = points.slice(0, 12);
    const row = 26, W = 560, labelW = 150, valueW = 80;
    const H = 24 + shown.length * row;
    const max = Math.max(0, ...shown.map((p) => p[1]));
    const svg = h("svg:svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img", "aria-label": title, "data-testid": testid },
      h("svg:title", { text: title }),
      h("svg:text", { x: 0, y: 14, class: "chart-title", text: title + (points.length > shown.length ? " (top " + shown.length + ")" : "") }));
    shown.forEach(([key, v], i) => {
      const y = 24 + i * row;
      const bw = max > 0 ? (v / max) * (W - labelW - valueW) : 0;
      svg.appendChild(h("svg:text", { x: labelW - 6, y: y + 16, class: "tick", "text-anchor": "end", text: key.length > 22 ? key.slice(0, 21) + "…" : key }));
      svg.appendChild(h("svg:rect", { x: labelW, y: y + 3, width: Math.max(v > 0 ? 1 : 0, bw).toFixed(1), height: row - 8, class: "bar" }, h("svg:title", { text: key + ": " + fmt(v) })));
      svg.appendChild(h("svg:text", { x: labelW + bw + 6, y: y + 16, class: "tick", text: fmt(v) }));
    });
    return h("figure", {}, svg);
  }

  // ---------------------------------------------------------------- agents

  async function agentsPage(ctx) {
    const body = h("div", { id: "agents-body" }, h("p", { class: "muted", text: "Loading agents…" }));
    page("Agents", [h("p", { class: "muted", text: "Each agent as this server runs it: its providers (with their circuit state), tools, limits and versions, and the tool policies by role." }), body], "agents");
    let data;
    try {
      data = await api("GET", "/v1/agents");
    } catch (err) {
      if (ctx.live()) clear(body).appendChild(errorBox(err, "agents-error"));
      return;
    }
    if (!ctx.live()) return;
    clear(body);
    const items = data.items || [];
    if (!items.length) body.appendChild(h("p", { class: "empty", text: "No agents are configured." }));
    for (const a of items) {
      const dl = [
        ["Versions", a.versions && a.versions.length ? a.versions.map((v) => v + (v === a.default_version ? " (stable)" : "")).join(", ") : "unversioned"],
        ["Tools", a.tools && a.tools.length ? a.tools.join(", ") : "none"],
        ["Max steps", fmtInt(a.max_steps)],
        ["Timeout", a.timeout || "—"],
        ["Budget per run", a.budget_usd === null || a.budget_usd === undefined ? "none" : fmtCost(a.budget_usd)],
      ];
      body.appendChild(h("section", { class: "card agent", "data-agent": a.name, "aria-labelledby": "agent-" + a.name },
        h("h2", { id: "agent-" + a.name, class: "mono", text: a.name }),
        a.description ? h("p", { text: a.description }) : null,
        h("dl", { class: "grid" }, dl.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])),
        h("h3", { text: "Providers (fallback order)" }),
        table("providers-" + a.name, "Providers of " + a.name, ["Name", "Kind", "Model", "Circuit"],
          (a.providers || []).map((p) => h("tr", {},
            h("td", { class: "mono", text: p.name }), h("td", { text: p.kind }), h("td", { text: p.model || "—" }),
            h("td", {}, h("span", { class: "badge c-" + p.circuit, "data-testid": "circuit", text: p.circuit }))))),
        a.output_schema ? details("Output schema", a.output_schema) : null,
        startRunForm(a)));
    }
    const policies = data.policies || [];
    body.appendChild(h("section", { "aria-labelledby": "policies-h" },
      h("h2", { id: "policies-h", text: "Tool policies" }),
      policies.length
        ? table("policies-table", "Tool policies by role", ["Role", "Allowed tools"], policies.map((p) => h("tr", {}, h("td", { text: p.role }), h("td", { class: "mono", text: (p.allow || []).join(", ") }))))
        : h("p", { class: "muted", text: "No [[policies]]: every tool an agent lists is allowed." })));
  }

  function details(summary, value) {
    return h("details", {}, h("summary", { text: summary }), h("pre", { text: pretty(value) }));
  }

  /** Starts a run of the agent with a text input (JSON when it parses as an
   *  object or array), then opens its page. */
  function startRunForm(agent) {
    const id = "start-" + agent.name;
    const input = h("textarea", { id, rows: "2", class: "wide", "data-testid": "start-input" });
    const conversation = h("input", { id: id + "-conversation", class: "conv", autocomplete: "off", "data-testid": "start-conversation" });
    const button = h("button", { type: "submit", "data-testid": "start-run", text: "Start run" });
    const form = h("form", { class: "start", "aria-label": "Start a run of " + agent.name },
      h("div", { class: "field" }, h("label", { for: id, text: "Input for a new run" }), input),
      h("div", { class: "field conv" }, h("label", { for: id + "-conversation", text: "Conversation id (optional)" }), conversation),
      button);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      let value = input.value;
      const t = value.trim();
      if (t.startsWith("{") || t.startsWith("[")) {
        try {
          value = JSON.parse(t);
        } catch (_) {
          /* plain text */
        }
      }
      button.disabled = true;
      try {
        const body = { input: value };
        if (conversation.value.trim()) body.conversation_id = conversation.value.trim();
        const run = await api("POST", "/v1/agents/" + encodeURIComponent(agent.name) + "/runs", body);
        announce("Started run " + shortId(run.id) + " of " + agent.name + ".");
        navigate(BASE + "/runs/" + encodeURIComponent(run.id));
      } catch (err) {
        button.disabled = false;
        announce("Could not start the run: " + describe(err), "error");
      }
    });
    return form;
  }

  route();
})();
