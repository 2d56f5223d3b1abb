// Watchkeeper dashboard: logs (search, level, live tail), error groups (sparklines, statuses,
// a group's stack, samples and the logs around them), and the logs of a trace and a session.
// Built on app.js's helpers; every value from users is put in the page as text.
"use strict";

(function () {
  const dashboard = window.watchkeeperDashboard;
  const { el, show, get, send, may, route, table, badge, when, text, count, hashWith, query, ranged, plain, state } = dashboard;
  const LEVELS = [[10, "DEBUG"], [20, "INFO"], [30, "WARNING"], [35, "AUDIT"], [40, "ERROR"], [45, "SECURITY"], [50, "CRITICAL"]];
  const levelName = (level) => { let name = String(level); for (const [number, label] of LEVELS) if (level >= number) name = label; return name; };
  const TAIL_SECONDS = 3;
  const SETTABLE = ["ongoing", "resolved", "ignored"];

  // ---- logs ----------------------------------------------------------------------------------
  function logTable(items, empty, options) {
    return table([
      { title: "When", value: (r) => when(r.time) },
      { title: "Level", value: (r) => el("span", { class: "badge level-" + levelName(r.level).toLowerCase() }, levelName(r.level)) },
      { title: "Logger", value: (r) => text(r.logger) },
      { title: "Message", value: (r) => logMessage(r), wrap: true },
      { title: "Trace", value: (r) => r.trace_id && !(options && options.inTrace) ? el("a", { href: "#/traces/" + r.trace_id, title: "The trace this was written in" }, r.trace_id.slice(-8)) : "–" },
      { title: "User", value: (r) => text(r.user_id) },
      { title: "Session", value: (r) => r.session_id ? el("a", { href: "#/sessions/" + encodeURIComponent(r.session_id) }, r.session_id) : "–" },
    ], items, empty);
  }
  function logMessage(record) {
    const parts = [el("span", { class: "log-message" }, text(record.message))];
    const attributes = record.attributes && Object.keys(record.attributes).length ? plain(record.attributes) : null;
    if (attributes) parts.push(el("div", { class: "muted" }, attributes));
    if (record.source) parts.push(el("div", { class: "muted" }, "from " + record.source));
    if (record.error_group) parts.push(" ", el("a", { href: "#/errors/" + record.error_group, class: "muted" }, "its error group"));
    if (record.exception) parts.push(el("details", {}, el("summary", {}, text(record.exception_type || "exception")), el("pre", { class: "stack" }, record.exception)));
    return el("div", {}, parts);
  }

  async function logsPage() {
    const params = query();
    const filters = { q: params.get("q") || "", level: params.get("level") || "", logger: params.get("logger") || "", user_id: params.get("user_id") || "", session_id: params.get("session_id") || "", tail: params.get("tail") === "true" ? "true" : "" };
    const input = (name, label, placeholder) => el("label", { class: "field" }, el("span", {}, label), el("input", { type: "search", name, value: filters[name], placeholder, "aria-label": label }));
    const level = el("select", { name: "level", "aria-label": "Lowest level" }, el("option", { value: "" }, "any level"), LEVELS.map(([number, label]) => el("option", { value: String(number), selected: filters.level === String(number) ? "selected" : undefined }, label + " and above")));
    const tail = el("input", { type: "checkbox", name: "tail", checked: filters.tail ? "checked" : undefined });
    const form = el("form", { class: "toolbar", id: "log-search", onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      const next = {};
      for (const name of ["q", "level", "logger", "user_id", "session_id"]) next[name] = String(data.get(name) || "").trim();
      next.tail = data.get("tail") ? "true" : "";
      location.hash = hashWith("logs", next);
    } },
      input("q", "Search", "words in messages and attributes"), el("label", { class: "field" }, el("span", {}, "Level"), level),
      input("logger", "Logger", "exact name"), input("user_id", "User", "user id"), input("session_id", "Session", "session id"),
      el("label", { class: "field" }, el("span", {}, "Live tail"), tail),
      el("button", { type: "submit" }, "Search"));
    const list = el("div", { id: "log-list" });
    show(el("h2", {}, "Logs"), form, list);
    const search = { q: filters.q, level: filters.level, logger: filters.logger, user_id: filters.user_id, session_id: filters.session_id, limit: 100 };
    let shown = [];
    let cursor = null;
    const draw = () => {
      const more = cursor ? el("button", { class: "ghost", id: "log-more", onclick: async () => {
        const page = await get("logs", ranged(Object.assign({}, search, { cursor })));
        shown = shown.concat(page.items); cursor = page.next_cursor; draw();
      } }, "Older") : null;
      list.replaceChildren(el("p", { class: "muted", id: "log-count" }, count(shown.length), shown.length === 1 ? " record" : " records", filters.tail ? " · following new records" : ""), logTable(shown, "No log records match in this range"), ...(more ? [more] : []));
    };
    const first = await get("logs", ranged(search));
    shown = first.items; cursor = first.next_cursor;
    draw();
    if (filters.tail) follow(search, () => shown, (added) => { shown = added.concat(shown); draw(); });
  }
  // Live tail: asks for what is newer than the newest record shown, every few seconds, for as
  // long as this page is the one shown.
  function follow(search, current, add) {
    const view = state.view;
    const tick = async () => {
      if (view !== state.view) return;
      const newest = current()[0];
      const since = newest ? new Date(new Date(newest.time).getTime() + 1).toISOString() : new Date(Date.now() - 60000).toISOString();
      try {
        const page = await get("logs", Object.assign({}, search, { from: since, to: new Date(Date.now() + 60000).toISOString() }));
        const known = new Set(current().map((record) => record.time + "|" + record.message));
        const added = page.items.filter((record) => !known.has(record.time + "|" + record.message));
        if (added.length) add(added);
      } catch (error) {
        if (view !== state.view) return;
      }
      setTimeout(tick, TAIL_SECONDS * 1000);
    };
    setTimeout(tick, TAIL_SECONDS * 1000);
  }

  // ---- errors --------------------------------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  function sparkline(series) {
    const width = 120, height = 24, top = Math.max(1, ...series);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("class", "sparkline");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Occurrences over the range: " + series.join(", "));
    const step = series.length > 1 ? width / (series.length - 1) : width;
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", series.map((value, index) => (index * step).toFixed(1) + "," + (height - 1 - (value / top) * (height - 2)).toFixed(1)).join(" "));
    svg.append(line);
    return svg;
  }
  const flagBadges = (flags) => flags.length ? el("span", {}, flags.map((flag) => el("span", { class: "badge flag-" + flag }, flag))) : "–";

  async function errorsPage(id) {
    if (id) return errorGroupPage(id);
    const params = query();
    const filters = { status: params.get("status") || "", flag: params.get("flag") || "" };
    const choose = (name, label, values) => {
      const select = el("select", { name, "aria-label": label }, el("option", { value: "" }, "any"), values.map((value) => el("option", { value, selected: filters[name] === value ? "selected" : undefined }, value)));
      select.addEventListener("change", () => { location.hash = hashWith("errors", Object.assign({}, filters, { [name]: select.value })); });
      return el("label", { class: "field" }, el("span", {}, label), select);
    };
    const groups = await get("errors", ranged({ status: filters.status, flag: filters.flag }));
    show(el("h2", {}, "Errors"),
      el("div", { class: "toolbar" }, choose("status", "Status", ["new", "ongoing", "regressed", "resolved", "ignored"]), choose("flag", "Flag", ["new", "spike", "regressed"])),
      table([
        { title: "Error", value: (g) => el("div", {}, el("a", { href: "#/errors/" + g.id, class: "group-title" }, g.title), el("div", { class: "muted" }, text(g.source), g.culprit ? " · " + g.culprit : "")), wrap: true },
        { title: "Trend", value: (g) => sparkline(g.series) },
        { title: "Count", value: (g) => count(g.count), num: true },
        { title: "Users", value: (g) => count(g.users), num: true },
        { title: "Status", value: (g) => badge(g.status) },
        { title: "Flags", value: (g) => flagBadges(g.flags) },
        { title: "First seen", value: (g) => when(g.first_seen) },
        { title: "Last seen", value: (g) => when(g.last_seen) },
      ], groups, "No errors in this range"));
  }

  async function errorGroupPage(id) {
    const detail = await get("errors/" + encodeURIComponent(id), ranged());
    const g = detail.group;
    const statusBox = el("div", { class: "toolbar", id: "group-status" }, "Status ", badge(g.status), " ",
      may("acknowledge") ? SETTABLE.filter((status) => status !== g.status).map((status) => el("button", { class: "ghost", "data-status": status, onclick: async () => {
        await send("PATCH", "errors/" + encodeURIComponent(g.id), { status });
        await route(); // whichever page is shown by now, drawn afresh
      } }, "Mark " + status)) : null);
    const stack = detail.frames.length
      ? el("ol", { class: "frames card", id: "group-stack" }, detail.frames.slice().reverse().map(([module, fn]) => el("li", {}, el("code", {}, module + "." + fn))))
      : el("div", { class: "card empty", id: "group-stack" }, "No in-app stack: grouped by " + text(g.basis));
    const sampleTable = table([
      { title: "When", value: (s) => when(s.time) },
      { title: "Message", value: (s) => s.detail ? el("details", {}, el("summary", {}, text(s.message)), el("pre", { class: "stack" }, s.detail)) : text(s.message), wrap: true },
      { title: "Trace", value: (s) => s.trace_id ? el("a", { href: "#/traces/" + s.trace_id }, s.trace_id.slice(-8)) : "–" },
      { title: "User", value: (s) => text(s.user_id) },
      { title: "Session", value: (s) => s.session_id ? el("a", { href: "#/sessions/" + encodeURIComponent(s.session_id) }, s.session_id) : "–" },
    ], detail.samples, "No samples kept");
    const around = el("div", { id: "group-logs" });
    show(el("h2", {}, g.title),
      el("p", { class: "muted" }, text(g.source), " · ", text(g.error_type), g.culprit ? " · " + g.culprit : "", " · ", count(g.count), " in this range · ", count(g.total), " in all · ", count(g.users), " users · first seen ", when(g.first_seen), " · last seen ", when(g.last_seen), " · ", flagBadges(g.flags)),
      el("div", { class: "card chart-small" }, sparkline(g.series)),
      statusBox, el("h3", {}, "Stack"), stack, el("h3", {}, "Samples"), sampleTable, el("h3", {}, "Logs around the latest sample"), around);
    const latest = detail.samples.find((sample) => sample.trace_id) || detail.samples[0];
    if (!latest) { around.replaceChildren(el("div", { class: "card empty" }, "No sample to look around")); return; }
    const page = latest.trace_id
      ? await get("traces/" + latest.trace_id + "/logs")
      : await get("logs", { from: new Date(new Date(latest.time).getTime() - 60000).toISOString(), to: new Date(new Date(latest.time).getTime() + 60000).toISOString() });
    around.replaceChildren(logTable(page.items, "No logs were written around it"));
  }

  // ---- a trace's and a session's logs --------------------------------------------------------
  async function appendLogs(path, title, options, params) {
    const page = await get(path, params);
    document.getElementById("main").append(el("h3", {}, title), el("div", { id: "related-logs" }, logTable(page.items, "No logs were written here", options)));
  }
  dashboard.extensions.afterTrace = (traceId) => appendLogs("traces/" + traceId + "/logs", "Logs", { inTrace: true });
  dashboard.extensions.afterSession = (sessionId, orgId) => appendLogs("sessions/" + encodeURIComponent(sessionId) + "/logs", "Logs", {}, { org_id: orgId });
  Object.assign(dashboard.extensions.pages, { logs: logsPage, errors: errorsPage });
})();
