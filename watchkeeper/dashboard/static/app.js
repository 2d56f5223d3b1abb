// Watchkeeper dashboard. Plain script, no build step. Every value that comes from users or
// integrations is put in the page as text (textContent), never as markup.
"use strict";

(function () {
  const THEME_STORAGE = "watchkeeper.theme";
  const api = (path) => new URL("api/v1/" + path, document.baseURI);
  // The key is sent once, to log in; the server answers with an HttpOnly session cookie that
  // scripts cannot read, and "me": the role, what it may do, and the CSRF token for changes.
  const state = { me: null, range: "1h", socket: null, charts: [], liveSpans: [], health: [], view: 0 };
  // A page whose data arrives after the user has moved on must not draw over the new page.
  class Superseded extends Error {}
  // Charts use minute buckets up to six hours and hour buckets beyond, as the API does.
  const STEPS = { "15m": 60, "1h": 60, "6h": 60, "24h": 3600, "7d": 3600, "30d": 3600 };
  const stepSeconds = () => STEPS[state.range] || 60;

  // ---- building the page safely --------------------------------------------------------------
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "onclick") node.addEventListener("click", handled(value));
      else if (name === "onsubmit") node.addEventListener("submit", handled(value));
      else node.setAttribute(name, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  // An action runs outside the page's own rendering: its failure is shown as the page's would
  // be, and one that only finds its page already left says nothing.
  const handled = (handler) => (event) => {
    const result = handler(event);
    if (result && typeof result.catch === "function") result.catch(showError);
  };
  const main = () => document.getElementById("main");
  // Only nodes and text: a null or undefined child would otherwise be shown as the word "null".
  const present = (nodes) => nodes.flat().filter((node) => node !== null && node !== undefined && node !== false);
  function show(...nodes) { destroyCharts(); main().replaceChildren(...present(nodes)); }

  // ---- formatting ----------------------------------------------------------------------------
  // Every formatter answers "–" for a missing or non-finite value, never "null" or "NaN".
  const NONE = "–";
  const isNumber = (value) => typeof value === "number" && Number.isFinite(value);
  const ms = (seconds) => !isNumber(seconds) ? NONE : seconds < 1 ? (seconds * 1000).toFixed(seconds < 0.01 ? 2 : 0) + " ms" : seconds.toFixed(2) + " s";
  const pct = (rate) => !isNumber(rate) ? NONE : (rate * 100).toFixed(rate < 0.1 ? 2 : 1) + " %";
  const usd = (value) => !isNumber(value) ? NONE : "$" + (value < 1 ? value.toFixed(4) : value.toFixed(2));
  const count = (value) => !isNumber(Number(value)) || value === null || value === "" ? NONE : Number(value).toLocaleString();
  const when = (iso) => { const date = iso ? new Date(iso) : null; return date && isNumber(date.getTime()) ? date.toLocaleString() : NONE; };
  const text = (value) => value === null || value === undefined || value === "" ? NONE : String(value);
  const badge = (status) => el("span", { class: "badge " + String(status || "unknown") }, text(status));
  const elapsed = (seconds) => seconds < 90 ? Math.round(seconds) + " s" : seconds < 5400 ? Math.round(seconds / 60) + " min" : seconds < 172800 ? (seconds / 3600).toFixed(1) + " h" : (seconds / 86400).toFixed(1) + " days";
  // Nested values as "name: value" text, missing ones as "–".
  const plain = (value) => Array.isArray(value) ? (value.length ? value.map(plain).join(", ") : NONE) : typeof value === "object" && value !== null ? (Object.keys(value).length ? Object.entries(value).map(([name, item]) => name + ": " + plain(item)).join(", ") : NONE) : text(value);
  const query = () => new URLSearchParams(location.hash.split("?")[1] || "");
  const hashWith = (page, params) => {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "" && value !== false) search.set(name, value);
    const encoded = search.toString();
    return "#/" + page + (encoded ? "?" + encoded : "");
  };

  // ---- talking to the API --------------------------------------------------------------------
  async function get(path, params) {
    const view = state.view;
    const url = api(path);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.status === 401) { loggedOut("Your session has ended: log in again."); throw new Error("unauthorized"); }
    const body = await response.json().catch(() => null);
    if (view !== state.view) throw new Superseded("the page was left");
    if (!response.ok) {
      const error = body && body.error;
      const details = error && Array.isArray(error.details) ? error.details.map((detail) => text(detail.location) + ": " + text(detail.message)).join("; ") : "";
      throw new Error((error && error.message ? error.message : "the server answered " + response.status) + (details ? " (" + details + ")" : ""));
    }
    return body;
  }
  const ranged = (params) => Object.assign({ range: state.range }, params || {});

  // ---- login ---------------------------------------------------------------------------------
  // A change (POST, DELETE…) made with the session cookie carries the session's CSRF token.
  async function send(method, path, body) {
    const headers = { "X-Watchkeeper-CSRF": state.me ? state.me.csrf_token || "" : "" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(api(path), { method, credentials: "same-origin", headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (response.status === 401) { loggedOut("Your session has ended: log in again."); throw new Error("unauthorized"); }
    const answer = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new Error(answer && answer.error ? answer.error.message : "the server answered " + response.status);
    return answer;
  }
  const may = (permission) => Boolean(state.me && state.me.permissions.includes(permission));
  async function login(event) {
    event.preventDefault();
    const field = document.getElementById("api-key");
    const response = await fetch(api("session"), { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ key: field.value.trim() }) });
    if (!response.ok) {
      document.getElementById("login-error").textContent = response.status === 401 ? "That key is not valid." : response.status === 403 ? "That key may not read this dashboard." : "The server answered " + response.status + ".";
      return;
    }
    field.value = "";
    state.me = await response.json();
    start();
  }
  async function logout() {
    try { await send("DELETE", "session"); } catch (error) { /* the session is over either way */ }
    loggedOut();
  }
  function loggedOut(message) {
    state.me = null;
    if (state.socket) state.socket.close();
    document.getElementById("app").hidden = true;
    document.getElementById("login").hidden = false;
    document.getElementById("login-error").textContent = message || "";
  }

  // ---- charts (uPlot) ------------------------------------------------------------------------
  function destroyCharts() { for (const chart of state.charts) chart.destroy(); state.charts = []; }
  // One x per bucket from the first to the last holding data; a bucket without data is null, so
  // uPlot leaves a gap there (spanGaps false) instead of drawing across it or showing a zero.
  function bucketed(points, seriesList, step) {
    const byTime = new Map(points.map((point) => [Math.round(new Date(point.bucket).getTime() / 1000), point]));
    const times = [...byTime.keys()].sort((a, b) => a - b);
    const xs = [];
    for (let x = times[0]; x <= times[times.length - 1]; x += step) xs.push(x);
    return [xs, ...seriesList.map((series) => xs.map((x) => {
      const point = byTime.get(x);
      const value = point ? series.value(point) : null;
      return isNumber(value) ? value : null;
    }))];
  }
  // Tick labels with as many decimals as the tick spacing needs, so no two ticks read the same.
  const decimals = (increment) => Math.max(0, Math.min(6, Math.ceil(-Math.log10(increment || 1))));
  const TICKS = {
    count: { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8], format: (value) => count(Math.round(value)) },
    seconds: { format: (value, increment) => value === 0 ? "0" : value < 1 ? (value * 1000).toFixed(decimals(increment * 1000)) + " ms" : value.toFixed(Math.max(1, decimals(increment))) + " s" },
    usd: { format: (value, increment) => value === 0 ? "$0" : "$" + value.toFixed(Math.max(2, decimals(increment))) },
  };
  function chart(title, points, seriesList, unit) {
    const box = el("div", { class: "card chart" }, el("div", { class: "title" }, title));
    if (!points.length) { box.append(el("div", { class: "empty" }, "No data in this range")); return box; }
    const step = stepSeconds();
    const data = bucketed(points, seriesList, step);
    const first = data[0][0], last = data[0][data[0].length - 1];
    const ticks = TICKS[unit];
    const style = getComputedStyle(document.documentElement);
    const axis = { stroke: style.getPropertyValue("--muted"), grid: { stroke: style.getPropertyValue("--line") }, ticks: { stroke: style.getPropertyValue("--line") } };
    requestAnimationFrame(() => {
      if (!box.isConnected || typeof uPlot === "undefined") return;
      const width = Math.max(260, box.clientWidth - 28);
      // Kept on the element (a property, not markup) so tests can read what is drawn.
      box.plot = new uPlot({
        width, height: 180, legend: { show: true },
        // x: the buckets holding data (half a bucket either side); y: from zero to just above the highest value.
        scales: {
          x: { time: true, range: () => [first - step / 2, last + step / 2] },
          y: { range: (u, low, high) => [0, isNumber(high) && high > 0 ? high * 1.15 : 1] },
        },
        series: [{}, ...seriesList.map((series) => ({
          label: series.label, stroke: style.getPropertyValue(series.color || "--accent"), width: 2, spanGaps: false,
          points: { show: true, size: 5 },
          value: (u, v) => isNumber(v) ? series.format(v) : NONE,
        }))],
        axes: [axis, Object.assign({ size: 76, values: (u, splits, index, space, increment) => splits.map((v) => ticks.format(v, increment)) }, ticks.incrs ? { incrs: ticks.incrs } : {}, axis)],
      }, data, box);
      box.dataset.drawn = "yes";
      state.charts.push(box.plot);
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
  function headlineStats(h) {
    const stat = (id, label, value, note) => el("div", { class: "card stat" }, el("div", { class: "label" }, label), el("div", { class: "value", id }, value), note ? el("div", { class: "note" }, note) : null);
    const over = h.covered_seconds > 0 ? "over " + elapsed(h.covered_seconds) + " of data" : "no data in this range";
    return el("div", { class: "stats", id: "stats" },
      stat("stat-rps", "Requests / s", isNumber(h.requests_per_second) ? h.requests_per_second.toFixed(2) : NONE, over),
      stat("stat-errors", "Error rate", pct(h.error_rate), count(h.errors) + " of " + count(h.requests)),
      stat("stat-p50", "p50", ms(h.p50)), stat("stat-p95", "p95", ms(h.p95)), stat("stat-p99", "p99", ms(h.p99)),
      stat("stat-sessions", "Active sessions", count(h.active_sessions), "last 5 min"),
      stat("stat-cost", "Cost / hour", h.cost_unknown_calls ? usd(h.cost_per_hour) + " + unpriced" : usd(h.cost_per_hour), usd(h.cost) + " in all"));
  }
  async function overviewPage() {
    const [overview, series, integrations] = await Promise.all([get("overview", ranged()), requestSeries(), get("integrations")]);
    state.health = integrations.map((item) => ({ name: item.name, status: item.status }));
    show(
      el("h2", {}, "Overview"),
      headlineStats(overview.headline),
      el("h3", {}, "Integrations"),
      healthChips(),
      overviewCharts(series),
      el("h3", {}, "Live"),
      el("div", { class: "card" }, el("ul", { id: "live-spans", class: "live-list" }, state.liveSpans.map(liveItem))));
  }
  function overviewCharts(series) {
    const per = stepSeconds() === 60 ? "minute" : "hour";
    return el("div", { class: "charts", id: "overview-charts" },
        chart("Requests per " + per, series, [{ label: "requests", value: (p) => p.count, format: (v) => count(Math.round(v)) }, { label: "errors", value: (p) => p.errors, format: (v) => count(Math.round(v)), color: "--fail" }], "count"),
        chart("Latency", series, [{ label: "p50", value: (p) => p.p50, format: ms }, { label: "p95", value: (p) => p.p95, format: ms, color: "--warn" }, { label: "p99", value: (p) => p.p99, format: ms, color: "--fail" }], "seconds"),
        chart("Cost of requests per " + per + " (their AI calls)", series, [{ label: "cost", value: (p) => p.cost, format: usd }], "usd"));
  }
  const requestSeries = () => get("series", ranged({ kind: "request", step: stepSeconds() === 60 ? "m" : "h" }));
  async function refreshOverview() {
    // Called on each live figures message: figures and charts follow the data without a reload.
    if (!document.getElementById("overview-charts")) return;
    const [overview, series] = await Promise.all([get("overview", ranged()), requestSeries()]);
    const current = document.getElementById("overview-charts");
    const stats = document.getElementById("stats");
    if (!current || !stats) return;
    stats.replaceWith(headlineStats(overview.headline));
    const fresh = overviewCharts(series);
    destroyCharts();
    current.replaceWith(fresh);
  }
  function healthChips() {
    if (!state.health.length) return el("div", { id: "health", class: "chips muted" }, "No integration traffic in the last five minutes");
    return el("div", { id: "health", class: "chips" }, state.health.map((item) => el("a", { class: "chip", href: "#/integrations/" + encodeURIComponent(item.name) }, badge(item.status), item.name)));
  }
  function liveItem(span) {
    return el("li", {}, badge(span.status), el("span", {}, text(span.kind)), el("a", { href: "#/traces/" + span.trace_id }, text(span.name)), el("span", { class: "muted" }, ms(span.duration)), span.session_id ? el("a", { href: "#/sessions/" + encodeURIComponent(span.session_id) }, span.session_id) : null);
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
    const [series, failures, resilience, moves] = await Promise.all([
      get("series", ranged({ kind: "integration", name, step: stepSeconds() === 60 ? "m" : "h" })),
      get("spans", ranged({ kind: "integration", name, status: "error", limit: 50 })),
      // A server that only reads the store (watchkeeper serve) guards no calls: no policies.
      get("resilience").catch((error) => { if (error instanceof Superseded) throw error; return null; }),
      get("metrics/resilience.circuit", ranged({ limit: 10000 })),
    ]);
    const guarded = resilience ? resilience.integrations.find((item) => item.name === name) : undefined;
    const transitions = moves.filter((point) => point.attributes && point.attributes.integration === name);
    show(el("h2", {}, "Integration ", el("span", {}, name)),
      el("div", { class: "charts" },
        chart("Latency", series, [{ label: "p50", value: (p) => p.p50, format: ms }, { label: "p95", value: (p) => p.p95, format: ms, color: "--warn" }], "seconds"),
        chart("Calls and errors", series, [{ label: "calls", value: (p) => p.count, format: (v) => count(Math.round(v)) }, { label: "errors", value: (p) => p.errors, format: (v) => count(Math.round(v)), color: "--fail" }], "count")),
      ...resilienceSection(guarded, transitions),
      el("h3", {}, "Recent failures"), spanTable(failures.items, "No failures in this range"));
  }

  // ---- resilience: the breaker's timeline and the effective policy -------------------------------
  const RANGE_SECONDS = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000 };
  const CIRCUIT_STATUS = { closed: "pass", half_open: "warn", open: "fail" };
  const circuitName = (value) => String(value || "closed").replace("_", "-");
  const circuitBadge = (value) => el("span", { class: "badge " + (CIRCUIT_STATUS[value] || "unknown") }, circuitName(value));
  function breakerTimeline(transitions, current) {
    const end = Date.now() / 1000, start = end - (RANGE_SECONDS[state.range] || 3600);
    const moves = transitions.map((point) => ({ at: new Date(point.time).getTime() / 1000, from: point.attributes.from, to: point.attributes.to })).filter((move) => isNumber(move.at)).sort((a, b) => a.at - b.at);
    // Before the first transition in range the breaker was in the state that transition left.
    let status = moves.length ? moves[0].from : current || "closed", from = start;
    const segments = [];
    for (const move of moves) {
      if (move.at > from) segments.push({ status, from, to: Math.min(move.at, end) });
      status = move.to; from = Math.max(move.at, start);
    }
    segments.push({ status, from, to: end });
    const bar = el("div", { class: "breaker", role: "img", "aria-label": "breaker states over the range" },
      segments.filter((segment) => segment.to > segment.from).map((segment) => {
        const span = el("span", {
          class: "segment " + (CIRCUIT_STATUS[segment.status] || "unknown"),
          title: circuitName(segment.status) + " from " + new Date(segment.from * 1000).toLocaleString() + " to " + new Date(segment.to * 1000).toLocaleString(),
        });
        // Through the style object: the page's policy refuses inline style attributes.
        span.style.flexGrow = String(segment.to - segment.from);
        span.dataset.state = segment.status;
        return span;
      }));
    return el("div", { class: "card" }, el("div", { class: "title" }, "Circuit breaker over the range"), bar,
      el("div", { class: "legend muted" }, ["closed", "half_open", "open"].map((name) => el("span", {}, circuitBadge(name), " "))));
  }
  function resilienceSection(guarded, transitions) {
    if (!guarded && !transitions.length) return [];
    const nodes = [el("h3", {}, "Resilience", guarded ? el("span", {}, " · circuit ", circuitBadge(guarded.circuit)) : "")];
    nodes.push(breakerTimeline(transitions, guarded && guarded.circuit));
    nodes.push(table([
      { title: "When", value: (point) => when(point.time) },
      { title: "From", value: (point) => circuitName(point.attributes.from) },
      { title: "To", value: (point) => circuitBadge(point.attributes.to) },
      { title: "Why", value: (point) => text(point.attributes.reason) },
    ], transitions.slice().reverse(), "The breaker did not change state in this range"));
    if (guarded) {
      const rows = Object.entries(guarded.policy).map(([part, value]) => ({ part, value }));
      nodes.push(el("h3", {}, "Effective policy"), table([
        { title: "Part", value: (row) => row.part.replace("_", " ") },
        { title: "Setting", value: (row) => plain(row.value) },
      ], rows));
    }
    return nodes;
  }
  function spanTable(spans, empty) {
    return table([
      { title: "When", value: (s) => when(s.start) },
      { title: "Kind", value: (s) => s.kind },
      { title: "Name", value: (s) => s.name, wrap: true },
      { title: "Status", value: (s) => badge(s.status) },
      { title: "Duration", value: (s) => ms(s.duration), num: true },
      { title: "Error", value: (s) => s.error_message || "", wrap: true },
      { title: "Trace", value: (s) => el("a", { href: "#/traces/" + s.trace_id }, s.trace_id.slice(-8)) },
    ], spans, empty);
  }

  async function routesPage() {
    const rows = await get("routes", ranged());
    const traces = (r, errorsOnly) => hashWith("traces", { kind: "request", name: r.name, errors_only: errorsOnly ? "true" : "" });
    const columns = figureColumns((r) => traces(r, false));
    columns[2] = { title: "Errors", value: (r) => r.errors ? el("a", { href: traces(r, true), title: "Traces that failed" }, pct(r.error_rate)) : pct(r.error_rate), num: true };
    columns[6] = { title: "Cost (AI calls)", value: (r) => r.cost_unknown ? usd(r.cost) + " + unpriced" : usd(r.cost), num: true };
    show(el("h2", {}, "Routes"), el("p", { class: "muted" }, "A request costs what the AI calls made under it cost. Select a route for its traces."), table(columns, rows));
  }

  async function sessionsPage(id) {
    if (id) return sessionPage(id);
    const search = new URLSearchParams(location.hash.split("?")[1] || "").get("q") || "";
    const page = await get("sessions", ranged({ search, limit: 100 }));
    const input = el("input", { type: "search", placeholder: "Session or user id", value: search, "aria-label": "Search sessions" });
    const form = el("form", { class: "toolbar", onsubmit: (event) => { event.preventDefault(); location.hash = "#/sessions?q=" + encodeURIComponent(input.value.trim()); } }, input, el("button", { type: "submit" }, "Search"));
    show(el("h2", {}, "Sessions"), form, table([
      // A session is its id within its organisation: the link names both.
      { title: "Session", value: (s) => el("a", { href: hashWith("sessions/" + encodeURIComponent(s.session_id), { org_id: s.org_id }) }, s.session_id) },
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
    const detail = await get("sessions/" + encodeURIComponent(id), { org_id: query().get("org_id") });
    const s = detail.session;
    show(el("h2", {}, "Session ", el("span", {}, s.session_id)),
      el("p", { class: "muted" }, "User ", text(s.user_id), " · organisation ", text(s.org_id), " · ", count(s.spans), " spans · ", usd(s.cost), s.ended_at ? " · ended " + when(s.ended_at) : " · open", " · ", el("a", { href: hashWith("traces", { session_id: s.session_id }) }, "its traces")),
      el("h3", {}, "Timeline"), waterfall(detail.roots, { traceLinks: true }),
      el("h3", {}, "Context snapshots"),
      detail.snapshots.length ? el("div", { class: "card" }, detail.snapshots.map((snap) => el("div", {}, el("strong", {}, snap.name), " ", el("span", { class: "muted" }, when(snap.time)), el("pre", {}, JSON.stringify(snap.data, null, 2))))) : el("div", { class: "card empty" }, "No snapshots"),
      el("h3", {}, "Validations"), validationTable(detail.validations, "No validations ran in this session"),
      detail.truncated ? el("p", { class: "muted" }, "This session is long; only its first part is shown.") : null);
    await extensions.afterSession(s.session_id, s.org_id);
  }
  // A request's cost is that of the AI calls (integration spans) under it, down to any nested request.
  function requestCost(node) {
    let total = 0, known = false;
    const walk = (child) => {
      if (child.span.kind === "request") return;
      if (child.span.kind === "integration" && isNumber(child.span.cost)) { total += child.span.cost; known = true; }
      child.children.forEach(walk);
    };
    node.children.forEach(walk);
    return known ? total : null;
  }
  function waterfall(roots, options) {
    const rows = [];
    const walk = (node, depth) => { rows.push({ node, span: node.span, depth }); node.children.forEach((child) => walk(child, depth + 1)); };
    roots.forEach((root) => walk(root, 0));
    if (!rows.length) return el("div", { class: "card empty" }, "No spans");
    const starts = rows.map((row) => new Date(row.span.start).getTime() / 1000);
    const first = Math.min(...starts);
    const last = Math.max(...rows.map((row, index) => starts[index] + row.span.duration));
    const total = Math.max(last - first, 1e-6);
    let detail = el("div", { id: "span-detail", class: "card detail", hidden: true });
    const select = (row, button) => {
      for (const selected of document.querySelectorAll(".wf-row.selected")) selected.classList.remove("selected");
      button.closest(".wf-row").classList.add("selected");
      const fresh = spanDetail(row.node, options);
      detail.replaceWith(fresh);
      detail = fresh;
    };
    const list = el("div", { class: "card waterfall", id: "waterfall" }, rows.map((row, index) => {
      const bar = el("div", { class: "wf-bar" + (row.span.status === "error" ? " error" : ""), title: row.span.name + " · " + ms(row.span.duration) });
      bar.style.left = ((starts[index] - first) / total * 100).toFixed(3) + "%";
      bar.style.width = (row.span.duration / total * 100).toFixed(3) + "%";
      const button = el("button", { type: "button", class: "link wf-name", title: "Show this span's details", "data-span-id": row.span.span_id }, row.span.name, " ", el("span", { class: "muted" }, ms(row.span.duration)), row.span.status === "error" ? el("span", { class: "badge error" }, "error") : null);
      button.style.paddingLeft = (row.depth * 14) + "px";
      button.addEventListener("click", () => { select(row, button); });
      const line = el("div", { class: "wf-row" }, button, el("div", { class: "wf-track" }, bar));
      line.addEventListener("click", (event) => { if (event.target !== button && !button.contains(event.target)) button.click(); });
      return line;
    }));
    return el("div", { class: "timeline" }, list, detail);
  }
  function spanDetail(node, options) {
    const s = node.span;
    const attributes = s.attributes || {};
    const cost = s.kind === "request" && !isNumber(s.cost) ? requestCost(node) : s.cost;
    const field = (label, value) => [el("dt", {}, label), el("dd", {}, value instanceof Node ? value : text(value))];
    const tokens = isNumber(s.input_tokens) || isNumber(s.output_tokens) ? count(s.input_tokens ?? 0) + " in / " + count(s.output_tokens ?? 0) + " out" : NONE;
    const others = Object.entries(attributes).filter(([name]) => name !== "stack");
    return el("section", { id: "span-detail", class: "card detail", "aria-label": "Span details" },
      el("h3", {}, el("span", {}, s.name), " ", badge(s.status)),
      el("dl", { class: "fields" },
        field("Kind", s.kind),
        field("Status code", attributes.status_code),
        field("Duration", ms(s.duration)),
        field("Started", when(s.start)),
        field("Model", s.model),
        field("Tokens", tokens),
        field(s.kind === "request" ? "Cost (its AI calls)" : "Cost", usd(cost)),
        field("Operation", s.operation),
        field("User", s.user_id),
        field("Session", s.session_id ? el("a", { href: "#/sessions/" + encodeURIComponent(s.session_id) }, s.session_id) : null),
        field("Service", s.service ? s.service + " · " + text(s.instance) : null),
        field("Trace", options && options.traceLinks ? el("a", { href: "#/traces/" + s.trace_id }, s.trace_id) : s.trace_id),
        field("Span", s.span_id),
        field("Error type", s.error_type),
        field("Error message", s.error_message)),
      attributes.stack ? [el("h4", {}, "Stack"), el("pre", { class: "stack" }, text(attributes.stack))] : null,
      el("h4", {}, "Attributes"),
      others.length ? el("table", { class: "attributes" }, el("tbody", {}, others.map(([name, value]) => el("tr", {}, el("th", {}, name), el("td", { class: "wrap" }, plain(value)))))) : el("p", { class: "muted" }, "No attributes"));
  }

  async function tracePage(id) {
    if (!id) return tracesPage();
    const trace = await get("traces/" + encodeURIComponent(id));
    show(el("h2", {}, "Trace ", el("span", {}, trace.trace_id)), el("p", { class: "muted" }, count(trace.span_count), " spans · select a span for its details"), waterfall(trace.roots));
    await extensions.afterTrace(trace.trace_id);
  }

  async function tracesPage() {
    const params = query();
    const filters = { trace_id: params.get("trace_id") || "", user_id: params.get("user_id") || "", session_id: params.get("session_id") || "", kind: params.get("kind") || "", name: params.get("name") || "", errors_only: params.get("errors_only") === "true" ? "true" : "" };
    const input = (name, label, placeholder, extra) => el("label", { class: "field" }, el("span", {}, label), el("input", Object.assign({ type: "search", name, value: filters[name], placeholder, "aria-label": label }, extra || {})));
    const form = el("form", { class: "toolbar", id: "trace-search", onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      const next = Object.assign({}, filters, { trace_id: String(data.get("trace_id")).trim().toLowerCase(), user_id: String(data.get("user_id")).trim(), session_id: String(data.get("session_id")).trim() });
      location.hash = hashWith("traces", next);
    } },
      input("trace_id", "Trace id", "32 hexadecimal digits", { pattern: "[0-9a-fA-F]{32}", title: "A whole trace id: 32 hexadecimal digits", spellcheck: "false" }),
      input("user_id", "User", "user id"),
      input("session_id", "Session", "session id"),
      el("button", { type: "submit" }, "Search"));
    const chips = [];
    if (filters.kind || filters.name) chips.push("with a " + (filters.kind || "span") + (filters.name ? " named “" + filters.name + "”" : ""));
    if (filters.errors_only) chips.push(filters.kind || filters.name ? "that failed" : "with an error");
    const active = chips.length ? el("p", { class: "filters", id: "trace-filters" }, "Traces ", chips.join(" "), " · ", el("a", { href: hashWith("traces", Object.assign({}, filters, { kind: "", name: "", errors_only: "" })) }, "show all")) : null;
    const list = el("div", { id: "trace-list" });
    show(el("h2", {}, "Traces"), form, active, list);
    const rows = [];
    const columns = [
      { title: "When", value: (t) => when(t.start) },
      { title: "Entry", value: (t) => el("a", { href: "#/traces/" + t.trace_id }, t.name), wrap: true },
      { title: "Kind", value: (t) => t.kind },
      { title: "Status", value: (t) => badge(t.errors ? "error" : t.status) },
      { title: "Duration", value: (t) => ms(t.duration), num: true },
      { title: "Spans", value: (t) => count(t.spans), num: true },
      { title: "Errors", value: (t) => count(t.errors), num: true },
      { title: "Cost", value: (t) => t.cost_unknown ? usd(t.cost) + " + unpriced" : usd(t.cost), num: true },
      { title: "User", value: (t) => t.user_id ? el("a", { href: hashWith("traces", { user_id: t.user_id }) }, t.user_id) : NONE },
      { title: "Session", value: (t) => t.session_id ? el("a", { href: "#/sessions/" + encodeURIComponent(t.session_id) }, t.session_id) : NONE },
      { title: "Trace", value: (t) => el("a", { href: "#/traces/" + t.trace_id, class: "mono" }, t.trace_id.slice(-8)) },
    ];
    const load = async (cursor) => {
      const page = await get("traces", ranged(Object.assign({ limit: 100, cursor }, filters)));
      rows.push(...page.items);
      const more = page.next_cursor ? el("button", { type: "button", class: "ghost", id: "more-traces", onclick: () => { load(page.next_cursor).catch(showError); } }, "More traces") : null;
      list.replaceChildren(...present([table(columns, rows, "No trace matches in this range"), more]));
    };
    await load(undefined);
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
      const rows = Object.entries(stats).map(([name, value]) => ({ name, value: plain(value) }));
      show(el("h2", {}, "Recorder"), table([{ title: "Figure", value: (r) => r.name }, { title: "Value", value: (r) => r.value, wrap: true }], rows));
    } catch (error) {
      if (error instanceof Superseded) return;
      show(el("h2", {}, "Recorder"), el("div", { class: "card empty" }, error.message));
    }
  }

  // ---- keys and the audit log ----------------------------------------------------------------
  const ROLES = ["read_only", "user", "org_admin", "super_admin", "ingest_only"];
  async function keysPage() {
    if (!may("manage_keys")) { show(el("h2", {}, "Keys"), el("div", { class: "card empty" }, "Your role may not manage keys.")); return; }
    const keys = await get("keys");
    const created = el("div", { id: "new-token" });
    const field = (label, name, input) => el("label", {}, label, " ", input || el("input", { name, id: "key-" + name }));
    const role = el("select", { name: "role", id: "key-role" }, ...ROLES.filter((item) => state.me.role === "super_admin" || ["read_only", "user", "org_admin"].includes(item)).map((item) => el("option", { value: item }, item)));
    const form = el("form", { class: "card", id: "key-form", onsubmit: async (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      const body = { name: data.get("name"), role: data.get("role") };
      for (const name of ["org_id", "user_id"]) if (data.get(name)) body[name] = data.get(name);
      try {
        const answer = await send("POST", "keys", body);
        created.replaceChildren(el("div", { class: "card" }, "New key ", el("code", {}, answer.key.key_id), " — its token, shown this once: ", el("code", { id: "token" }, answer.token)));
      } catch (error) { created.replaceChildren(el("div", { class: "card error", role: "alert" }, error.message)); }
    } }, field("Name", "name"), field("Role", "role", role), field("Organisation", "org_id"), field("User", "user_id"), el("button", { type: "submit" }, "Create key"));
    const revoke = (key) => el("button", { class: "ghost", onclick: async () => { await send("DELETE", "keys/" + key.key_id); route(); } }, "Revoke");
    show(el("h2", {}, "Keys"), created, table([
      { title: "Id", value: (key) => key.key_id },
      { title: "Name", value: (key) => key.name, wrap: true },
      { title: "Role", value: (key) => key.role },
      { title: "Organisation", value: (key) => text(key.org_id) },
      { title: "User", value: (key) => text(key.user_id) },
      { title: "Last used", value: (key) => when(key.last_used_at) },
      { title: "State", value: (key) => key.revoked_at ? "revoked " + when(key.revoked_at) : revoke(key) },
    ], keys), form);
  }
  async function auditPage() {
    if (!may("read_audit")) { show(el("h2", {}, "Audit log"), el("div", { class: "card empty" }, "Your role may not read the audit log.")); return; }
    const entries = await get("audit", ranged({ limit: 200 }));
    const exported = api("audit/export");
    exported.searchParams.set("range", state.range);
    show(el("h2", {}, "Audit log"), el("p", {}, el("a", { href: exported.href, download: "audit.jsonl" }, "Export as JSON lines")), table([
      { title: "Time", value: (entry) => when(entry.time) },
      { title: "Action", value: (entry) => entry.action },
      { title: "Outcome", value: (entry) => entry.outcome },
      { title: "Resource", value: (entry) => text(entry.resource), wrap: true },
      { title: "Key", value: (entry) => text(entry.key_id) },
      { title: "Role", value: (entry) => text(entry.role) },
      { title: "Organisation", value: (entry) => text(entry.org_id) },
      { title: "Client", value: (entry) => text(entry.client) },
    ], entries));
  }

  // ---- pages of other files (logs.js) --------------------------------------------------------
  // They get the helpers here, add their pages, and add to the trace's and the session's page.
  const extensions = { pages: {}, afterTrace: async () => {}, afterSession: async () => {} };
  window.watchkeeperDashboard = { extensions, el, show, get, send, may, route, table, badge, when, text, count, hashWith, query, ranged, plain, state };

  // ---- routing -------------------------------------------------------------------------------
  const pages = { keys: keysPage, audit: auditPage, overview: overviewPage, integrations: integrationsPage, routes: routesPage, sessions: sessionsPage, traces: tracePage, issues: issuesPage, tools: toolsPage, queues: queuesPage, costs: costsPage, recorder: recorderPage };
  // Pages in files of their own (alerts.js) register here and build with the same helpers.
  window.Watchkeeper = { el, get, send, show, table, text, when, route, page: (name, render) => { pages[name] = render; } };
  async function route() {
    const [path] = location.hash.replace(/^#\/?/, "").split("?");
    const [page, ...rest] = path.split("/");
    const all = Object.assign({}, extensions.pages, pages);
    const name = all[page] ? page : "overview";
    state.view += 1;
    for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.getAttribute("href") === "#/" + name);
    document.getElementById("nav").classList.remove("open");
    try {
      await all[name](rest.length ? decodeURIComponent(rest.join("/")) : undefined);
    } catch (error) {
      showError(error);
    }
  }
  function showError(error) {
    if (error.message === "unauthorized" || error instanceof Superseded) return;
    const box = el("div", { class: "card error", role: "alert" }, "Could not load this page: ", text(error.message));
    const list = document.getElementById("trace-list");
    if (list) list.replaceChildren(box); else show(box);
  }

  // ---- live feed -----------------------------------------------------------------------------
  // The browser sends the session cookie with the handshake: no key, in the URL or anywhere.
  function connect() {
    const url = api("live");
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url);
    state.socket = socket;
    const indicator = document.getElementById("live");
    socket.onclose = () => { indicator.classList.remove("on"); if (state.me && state.socket === socket) setTimeout(connect, 3000); };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "ready") {
        indicator.classList.add("on");
      } else if (message.type === "spans") {
        state.liveSpans = message.spans.slice().reverse().concat(state.liveSpans).slice(0, 50);
        const list = document.getElementById("live-spans");
        if (list) list.replaceChildren(...state.liveSpans.map(liveItem));
      } else if (message.type === "figures") {
        // The message's figures are for the last five minutes; the page shows the chosen range.
        refreshOverview().catch(() => {});
      } else if (message.type === "resilience") {
        // A breaker moved: the integration page it belongs to draws its timeline again.
        const moved = message.events.filter((item) => item.event === "circuit").map((item) => item.integration);
        const page = decodeURIComponent((location.hash.match(/^#\/integrations\/([^?]+)/) || [])[1] || "");
        if (page && moved.includes(page)) route();
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
    // What the role may not do is not shown: pages needing a permission say which.
    for (const link of document.querySelectorAll("#nav a[data-needs]")) link.hidden = !may(link.dataset.needs);
    document.getElementById("whoami").textContent = state.me.name + " · " + state.me.role.replace("_", " ") + (state.me.org_id ? " · " + state.me.org_id : "");
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
    fetch(api("session"), { credentials: "same-origin" }).then(async (response) => {
      if (response.ok) { state.me = await response.json(); start(); } else document.getElementById("login").hidden = false;
    }).catch(() => { document.getElementById("login").hidden = false; });
  });
})();
