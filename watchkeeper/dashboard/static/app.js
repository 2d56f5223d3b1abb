// Watchkeeper dashboard. Plain script, no build step. Every value that comes from users or
// integrations is put in the page as text (textContent), never as markup.
"use strict";

(function () {
  const KEY_STORAGE = "watchkeeper.key";
  const THEME_STORAGE = "watchkeeper.theme";
  const api = (path) => new URL("api/v1/" + path, document.baseURI);
  const state = { key: sessionStorage.getItem(KEY_STORAGE), range: "1h", socket: null, charts: [], liveSpans: [], health: [] };

  // ---- building the page safely --------------------------------------------------------------
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "onclick") node.addEventListener("click", value);
      else if (name === "onsubmit") node.addEventListener("submit", value);
      else node.setAttribute(name, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const main = () => document.getElementById("main");
  function show(...nodes) { destroyCharts(); main().replaceChildren(...nodes); }

  // ---- formatting ----------------------------------------------------------------------------
  const ms = (seconds) => seconds === null || seconds === undefined ? "–" : seconds < 1 ? (seconds * 1000).toFixed(seconds < 0.01 ? 2 : 0) + " ms" : seconds.toFixed(2) + " s";
  const pct = (rate) => (rate * 100).toFixed(rate < 0.1 ? 2 : 1) + " %";
  const usd = (value) => "$" + (value < 1 ? value.toFixed(4) : value.toFixed(2));
  const count = (value) => Number(value).toLocaleString();
  const when = (iso) => iso ? new Date(iso).toLocaleString() : "–";
  const badge = (status) => el("span", { class: "badge " + status }, status);

  // ---- talking to the API --------------------------------------------------------------------
  async function get(path, params) {
    const url = api(path);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    const response = await fetch(url, { headers: { Authorization: "Bearer " + state.key } });
    if (response.status === 401) { logout("Your API key was not accepted."); throw new Error("unauthorized"); }
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    return body;
  }
  const ranged = (params) => Object.assign({ range: state.range }, params || {});

  // ---- login ---------------------------------------------------------------------------------
  async function login(event) {
    event.preventDefault();
    const key = document.getElementById("api-key").value.trim();
    const response = await fetch(api("overview"), { headers: { Authorization: "Bearer " + key } });
    if (!response.ok) {
      document.getElementById("login-error").textContent = response.status === 401 ? "That key is not valid." : "The server answered " + response.status + ".";
      return;
    }
    state.key = key;
    sessionStorage.setItem(KEY_STORAGE, key);
    start();
  }
  function logout(message) {
    sessionStorage.removeItem(KEY_STORAGE);
    state.key = null;
    if (state.socket) state.socket.close();
    document.getElementById("app").hidden = true;
    document.getElementById("login").hidden = false;
    document.getElementById("login-error").textContent = message || "";
  }

  // ---- charts (uPlot) ------------------------------------------------------------------------
  function destroyCharts() { for (const chart of state.charts) chart.destroy(); state.charts = []; }
  function chart(title, points, seriesList) {
    const box = el("div", { class: "card chart" }, el("div", { class: "title" }, title));
    if (!points.length) { box.append(el("div", { class: "empty" }, "No data in this range")); return box; }
    const xs = points.map((point) => new Date(point.bucket).getTime() / 1000);
    const data = [xs, ...seriesList.map((series) => points.map(series.value))];
    const style = getComputedStyle(document.documentElement);
    const axis = { stroke: style.getPropertyValue("--muted"), grid: { stroke: style.getPropertyValue("--line") } };
    requestAnimationFrame(() => {
      if (!box.isConnected || typeof uPlot === "undefined") return;
      const width = Math.max(260, box.clientWidth - 28);
      state.charts.push(new uPlot({
        width, height: 180, legend: { show: true },
        series: [{}, ...seriesList.map((series) => ({ label: series.label, stroke: style.getPropertyValue(series.color || "--accent"), width: 2, value: (u, v) => v === null ? "–" : series.format(v) }))],
        axes: [axis, Object.assign({ size: 70, values: (u, ticks) => ticks.map(seriesList[0].format) }, axis)],
      }, data, box));
    });
    return box;
  }

  // ---- tables --------------------------------------------------------------------------------
  function table(columns, rows, empty) {
    if (!rows.length) return el("div", { class: "card empty" }, empty || "Nothing in this range");
    return el("div", { class: "table-wrap card" }, el("table", {},
      el("thead", {}, el("tr", {}, columns.map((column) => el("th", { class: column.num ? "num" : "" }, column.title)))),
      el("tbody", {}, rows.map((row) => el("tr", {}, columns.map((column) => {
        const value = column.value(row);
        return el("td", { class: (column.num ? "num " : "") + (column.wrap ? "wrap" : "") }, value instanceof Node ? value : String(value ?? "–"));
      }))))));
  }
  const figureColumns = (link) => [
    { title: "Name", value: (r) => link ? el("a", { href: link(r) }, r.name) : r.name, wrap: true },
    { title: "Calls", value: (r) => count(r.count), num: true },
    { title: "Errors", value: (r) => pct(r.error_rate), num: true },
    { title: "p50", value: (r) => ms(r.p50), num: true },
    { title: "p95", value: (r) => ms(r.p95), num: true },
    { title: "p99", value: (r) => ms(r.p99), num: true },
    { title: "Cost", value: (r) => r.cost_unknown ? usd(r.cost) + " + unknown" : usd(r.cost), num: true },
  ];

  // ---- pages ---------------------------------------------------------------------------------
  async function overviewPage() {
    const [overview, series, integrations] = await Promise.all([get("overview", ranged()), get("series", ranged({ kind: "request" })), get("integrations")]);
    const h = overview.headline;
    state.health = integrations.map((item) => ({ name: item.name, status: item.status }));
    const stat = (id, label, value) => el("div", { class: "card stat" }, el("div", { class: "label" }, label), el("div", { class: "value", id }, value));
    show(
      el("h2", {}, "Overview"),
      el("div", { class: "stats" },
        stat("stat-rps", "Requests / s", h.requests_per_second.toFixed(2)),
        stat("stat-errors", "Error rate", pct(h.error_rate)),
        stat("stat-p50", "p50", ms(h.p50)), stat("stat-p95", "p95", ms(h.p95)), stat("stat-p99", "p99", ms(h.p99)),
        stat("stat-sessions", "Active sessions", count(h.active_sessions)),
        stat("stat-cost", "Cost / hour", h.cost_unknown_calls ? usd(h.cost_per_hour) + " + unpriced" : usd(h.cost_per_hour))),
      el("h3", {}, "Integrations"),
      healthChips(),
      overviewCharts(series),
      el("h3", {}, "Live"),
      el("div", { class: "card" }, el("ul", { id: "live-spans", class: "live-list" }, state.liveSpans.map(liveItem))));
  }
  function overviewCharts(series) {
    return el("div", { class: "charts", id: "overview-charts" },
        chart("Requests per bucket", series, [{ label: "requests", value: (p) => p.count, format: (v) => count(Math.round(v)) }, { label: "errors", value: (p) => p.errors, format: (v) => count(Math.round(v)), color: "--fail" }]),
        chart("Latency", series, [{ label: "p50", value: (p) => p.p50, format: ms }, { label: "p95", value: (p) => p.p95, format: ms, color: "--warn" }, { label: "p99", value: (p) => p.p99, format: ms, color: "--fail" }]),
        chart("Cost per bucket", series, [{ label: "cost", value: (p) => p.cost, format: usd }]));
  }
  async function refreshOverviewCharts() {
    // Called on each live figures message: the charts follow the data without a reload.
    const current = document.getElementById("overview-charts");
    if (!current) return;
    const series = await get("series", ranged({ kind: "request" }));
    const fresh = overviewCharts(series);
    destroyCharts();
    current.replaceWith(fresh);
  }
  function healthChips() {
    if (!state.health.length) return el("div", { id: "health", class: "chips muted" }, "No integration traffic in the last five minutes");
    return el("div", { id: "health", class: "chips" }, state.health.map((item) => el("a", { class: "chip", href: "#/integrations/" + encodeURIComponent(item.name) }, badge(item.status), item.name)));
  }
  function liveItem(span) {
    return el("li", {}, badge(span.status), el("span", {}, span.kind), el("strong", {}, span.name), el("span", { class: "muted" }, ms(span.duration)), span.session_id ? el("a", { href: "#/sessions/" + encodeURIComponent(span.session_id) }, span.session_id) : null);
  }

  async function integrationsPage(name) {
    if (name) return integrationPage(name);
    const rows = await get("integrations");
    show(el("h2", {}, "Integrations"), table([
      { title: "Integration", value: (r) => el("a", { href: "#/integrations/" + encodeURIComponent(r.name) }, r.name) },
      { title: "Health", value: (r) => badge(r.status) },
      { title: "Calls (5 min)", value: (r) => count(r.figures.count), num: true },
      { title: "Errors", value: (r) => pct(r.figures.error_rate), num: true },
      { title: "p95", value: (r) => ms(r.figures.p95), num: true },
      { title: "Why", value: (r) => r.reasons.join("; "), wrap: true },
    ], rows, "No integration was called in the last five minutes"));
  }
  async function integrationPage(name) {
    const [series, failures] = await Promise.all([get("series", ranged({ kind: "integration", name })), get("spans", ranged({ kind: "integration", name, status: "error", limit: 50 }))]);
    show(el("h2", {}, "Integration ", el("span", {}, name)),
      el("div", { class: "charts" },
        chart("Latency", series, [{ label: "p50", value: (p) => p.p50, format: ms }, { label: "p95", value: (p) => p.p95, format: ms, color: "--warn" }]),
        chart("Calls and errors", series, [{ label: "calls", value: (p) => p.count, format: (v) => count(Math.round(v)) }, { label: "errors", value: (p) => p.errors, format: (v) => count(Math.round(v)), color: "--fail" }])),
      el("h3", {}, "Recent failures"), spanTable(failures.items, "No failures in this range"));
  }
  function spanTable(spans, empty) {
    return table([
      { title: "When", value: (s) => when(s.start) },
      { title: "Kind", value: (s) => s.kind },
      { title: "Name", value: (s) => s.name, wrap: true },
      { title: "Status", value: (s) => badge(s.status) },
      { title: "Duration", value: (s) => ms(s.duration), num: true },
      { title: "Error", value: (s) => s.error_message || "", wrap: true },
      { title: "Trace", value: (s) => el("a", { href: "#/traces/" + s.trace_id }, s.trace_id.slice(0, 8)) },
    ], spans, empty);
  }

  async function routesPage() {
    const rows = await get("routes", ranged());
    show(el("h2", {}, "Routes"), table(figureColumns(), rows));
  }

  async function sessionsPage(id) {
    if (id) return sessionPage(id);
    const search = new URLSearchParams(location.hash.split("?")[1] || "").get("q") || "";
    const page = await get("sessions", ranged({ search, limit: 100 }));
    const input = el("input", { type: "search", placeholder: "Session or user id", value: search, "aria-label": "Search sessions" });
    const form = el("form", { class: "toolbar", onsubmit: (event) => { event.preventDefault(); location.hash = "#/sessions?q=" + encodeURIComponent(input.value.trim()); } }, input, el("button", { type: "submit" }, "Search"));
    show(el("h2", {}, "Sessions"), form, table([
      { title: "Session", value: (s) => el("a", { href: "#/sessions/" + encodeURIComponent(s.session_id) }, s.session_id) },
      { title: "User", value: (s) => s.user_id || "–" },
      { title: "Organisation", value: (s) => s.org_id || "–" },
      { title: "Last seen", value: (s) => when(s.last_seen) },
      { title: "State", value: (s) => s.ended_at ? "ended" : "open" },
      { title: "Spans", value: (s) => count(s.spans), num: true },
      { title: "Errors", value: (s) => count(s.errors), num: true },
      { title: "Cost", value: (s) => usd(s.cost), num: true },
    ], page.items, "No session in this range"));
  }
  async function sessionPage(id) {
    const detail = await get("sessions/" + encodeURIComponent(id));
    const s = detail.session;
    show(el("h2", {}, "Session ", el("span", {}, s.session_id)),
      el("p", { class: "muted" }, "User ", s.user_id || "–", " · organisation ", s.org_id || "–", " · ", count(s.spans), " spans · ", usd(s.cost), s.ended_at ? " · ended " + when(s.ended_at) : " · open"),
      el("h3", {}, "Timeline"), waterfall(detail.roots),
      el("h3", {}, "Context snapshots"),
      detail.snapshots.length ? el("div", { class: "card" }, detail.snapshots.map((snap) => el("div", {}, el("strong", {}, snap.name), " ", el("span", { class: "muted" }, when(snap.time)), el("pre", {}, JSON.stringify(snap.data, null, 2))))) : el("div", { class: "card empty" }, "No snapshots"),
      el("h3", {}, "Validations"), validationTable(detail.validations, "No validations ran in this session"),
      detail.truncated ? el("p", { class: "muted" }, "This session is long; only its first part is shown.") : null);
  }
  function waterfall(roots) {
    const rows = [];
    const walk = (node, depth) => { rows.push({ span: node.span, depth }); node.children.forEach((child) => walk(child, depth + 1)); };
    roots.forEach((root) => walk(root, 0));
    if (!rows.length) return el("div", { class: "card empty" }, "No spans");
    const starts = rows.map((row) => new Date(row.span.start).getTime() / 1000);
    const first = Math.min(...starts);
    const last = Math.max(...rows.map((row, index) => starts[index] + row.span.duration));
    const total = Math.max(last - first, 1e-6);
    return el("div", { class: "card waterfall", id: "waterfall" }, rows.map((row, index) => {
      const bar = el("div", { class: "wf-bar" + (row.span.status === "error" ? " error" : ""), title: row.span.name + " · " + ms(row.span.duration) });
      bar.style.left = ((starts[index] - first) / total * 100).toFixed(3) + "%";
      bar.style.width = (row.span.duration / total * 100).toFixed(3) + "%";
      const name = el("div", { class: "wf-name" }, el("a", { href: "#/traces/" + row.span.trace_id }, row.span.name), " ", el("span", { class: "muted" }, ms(row.span.duration)));
      name.style.paddingLeft = (row.depth * 14) + "px";
      return el("div", { class: "wf-row" }, name, el("div", { class: "wf-track" }, bar));
    }));
  }

  async function tracePage(id) {
    const trace = await get("traces/" + encodeURIComponent(id));
    show(el("h2", {}, "Trace ", el("span", {}, trace.trace_id)), el("p", { class: "muted" }, count(trace.span_count), " spans"), waterfall(trace.roots));
  }

  async function errorsPage() {
    const groups = await get("errors", ranged());
    show(el("h2", {}, "Errors"), table([
      { title: "Kind", value: (g) => g.kind },
      { title: "Name", value: (g) => g.name, wrap: true },
      { title: "Error", value: (g) => g.error_type || "–" },
      { title: "Count", value: (g) => count(g.count), num: true },
      { title: "Last seen", value: (g) => when(g.last_seen) },
      { title: "Sample", value: (g) => g.sample_message || "", wrap: true },
      { title: "Trace", value: (g) => el("a", { href: "#/traces/" + g.sample_trace_id }, g.sample_trace_id.slice(0, 8)) },
    ], groups, "No errors in this range"));
  }

  function validationTable(items, empty) {
    return table([
      { title: "When", value: (v) => when(v.time) },
      { title: "Target", value: (v) => v.target },
      { title: "Rule", value: (v) => v.validator },
      { title: "Result", value: (v) => badge(v.passed ? "pass" : "fail") },
      { title: "Severity", value: (v) => v.severity },
      { title: "Observed", value: (v) => v.observed ?? "–" },
      { title: "Expected", value: (v) => v.expected },
      { title: "Message", value: (v) => v.message, wrap: true },
      { title: "Session", value: (v) => v.session_id ? el("a", { href: "#/sessions/" + encodeURIComponent(v.session_id) }, v.session_id) : "–" },
    ], items, empty);
  }
  async function issuesPage() {
    const page = await get("validations", ranged({ failed_only: true, limit: 200 }));
    show(el("h2", {}, "Validation issues"), validationTable(page.items, "No validation failed in this range"));
  }

  async function toolsPage() {
    const [tools, agents] = await Promise.all([get("kinds/tool", ranged()), get("kinds/agent", ranged())]);
    show(el("h2", {}, "Tools and agents"), el("h3", {}, "Tools"), table(figureColumns(), tools, "No tool calls in this range"), el("h3", {}, "Agents"), table(figureColumns(), agents, "No agent runs in this range"));
  }

  async function queuesPage() {
    const queues = await get("kinds/queue", ranged());
    const sizes = await Promise.all(queues.map((queue) => get("metrics/" + encodeURIComponent("queue." + queue.name + ".size"), ranged({ limit: 10000 }))));
    show(el("h2", {}, "Queues"), table([
      { title: "Queue", value: (q) => q.name },
      { title: "Items taken", value: (q) => count(q.count), num: true },
      { title: "Wait p50", value: (q) => ms(q.p50), num: true },
      { title: "Wait p95", value: (q) => ms(q.p95), num: true },
      { title: "Size now", value: (q) => { const points = sizes[queues.indexOf(q)]; return points.length ? count(points[points.length - 1].value) : "–"; }, num: true },
    ], queues, "No queue activity in this range"));
  }

  async function costsPage() {
    const [models, users, orgs] = await Promise.all([get("costs/model", ranged()), get("costs/user", ranged()), get("costs/org", ranged())]);
    const columns = (title) => [
      { title, value: (r) => r.value },
      { title: "Calls", value: (r) => count(r.count), num: true },
      { title: "Input tokens", value: (r) => count(r.input_tokens), num: true },
      { title: "Output tokens", value: (r) => count(r.output_tokens), num: true },
      { title: "Cost", value: (r) => usd(r.cost), num: true },
      { title: "Unpriced calls", value: (r) => count(r.cost_unknown), num: true },
    ];
    show(el("h2", {}, "Costs"), el("h3", {}, "By model"), table(columns("Model"), models), el("h3", {}, "By user"), table(columns("User"), users), el("h3", {}, "By organisation"), table(columns("Organisation"), orgs));
  }

  async function recorderPage() {
    try {
      const stats = await get("recorder");
      const rows = Object.entries(stats).map(([name, value]) => ({ name, value: typeof value === "object" && value !== null ? JSON.stringify(value) : value }));
      show(el("h2", {}, "Recorder"), table([{ title: "Figure", value: (r) => r.name }, { title: "Value", value: (r) => r.value, wrap: true }], rows));
    } catch (error) {
      show(el("h2", {}, "Recorder"), el("div", { class: "card empty" }, error.message));
    }
  }

  // ---- routing -------------------------------------------------------------------------------
  const pages = { overview: overviewPage, integrations: integrationsPage, routes: routesPage, sessions: sessionsPage, traces: tracePage, errors: errorsPage, issues: issuesPage, tools: toolsPage, queues: queuesPage, costs: costsPage, recorder: recorderPage };
  async function route() {
    const [path] = location.hash.replace(/^#\/?/, "").split("?");
    const [page, ...rest] = path.split("/");
    const name = pages[page] ? page : "overview";
    for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.getAttribute("href") === "#/" + name);
    document.getElementById("nav").classList.remove("open");
    try {
      await pages[name](rest.length ? decodeURIComponent(rest.join("/")) : undefined);
    } catch (error) {
      if (error.message !== "unauthorized") show(el("div", { class: "card error" }, "Could not load this page: ", error.message));
    }
  }

  // ---- live feed -----------------------------------------------------------------------------
  function connect() {
    const url = api("live");
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("key", state.key);
    const socket = new WebSocket(url);
    state.socket = socket;
    const indicator = document.getElementById("live");
    socket.onopen = () => indicator.classList.add("on");
    socket.onclose = () => { indicator.classList.remove("on"); if (state.key && state.socket === socket) setTimeout(connect, 3000); };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "spans") {
        state.liveSpans = message.spans.slice().reverse().concat(state.liveSpans).slice(0, 50);
        const list = document.getElementById("live-spans");
        if (list) list.replaceChildren(...state.liveSpans.map(liveItem));
      } else if (message.type === "figures") {
        const set = (id, text) => { const node = document.getElementById(id); if (node) node.textContent = text; };
        set("stat-rps", message.requests_per_second.toFixed(2));
        set("stat-errors", pct(message.error_rate));
        set("stat-p50", ms(message.p50)); set("stat-p95", ms(message.p95)); set("stat-p99", ms(message.p99));
        if (!document.getElementById("stat-cost")?.textContent.includes("unpriced")) set("stat-cost", usd(message.cost_per_hour));
        refreshOverviewCharts().catch(() => {});
      } else if (message.type === "health") {
        state.health = message.integrations.map((item) => ({ name: item.name, status: item.status }));
        const chips = document.getElementById("health");
        if (chips) chips.replaceWith(healthChips());
      }
    };
  }

  // ---- start ---------------------------------------------------------------------------------
  function applyTheme(theme) { if (theme) document.documentElement.dataset.theme = theme; }
  function start() {
    document.getElementById("login").hidden = true;
    document.getElementById("app").hidden = false;
    connect();
    route();
  }
  document.addEventListener("DOMContentLoaded", () => {
    applyTheme(localStorage.getItem(THEME_STORAGE));
    document.getElementById("login-form").addEventListener("submit", login);
    document.getElementById("logout").addEventListener("click", () => logout());
    document.getElementById("range").addEventListener("change", (event) => { state.range = event.target.value; route(); });
    document.getElementById("menu").addEventListener("click", () => document.getElementById("nav").classList.toggle("open"));
    document.getElementById("theme").addEventListener("click", () => {
      const dark = document.documentElement.dataset.theme === "dark" || (!document.documentElement.dataset.theme && matchMedia("(prefers-color-scheme: dark)").matches);
      const theme = dark ? "light" : "dark";
      localStorage.setItem(THEME_STORAGE, theme);
      applyTheme(theme);
      route();
    });
    window.addEventListener("hashchange", route);
    if (state.key) start(); else document.getElementById("login").hidden = false;
  });
})();
