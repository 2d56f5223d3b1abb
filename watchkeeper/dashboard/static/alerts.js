// The alerts view: firing and pending alerts (acknowledge, silence), silences, history, and the
// rule editor with a preview of the signal over the last day. Built with the dashboard's own
// helpers (window.Watchkeeper, from app.js), as one of its pages.
(function () {
  const W = window.Watchkeeper;
  const { el, get, send, show, table, text, when, route } = W;
  const SEVERITY_BADGE = { critical: "fail", warning: "warn" };
  const severity = (value) => el("span", { class: "badge " + (SEVERITY_BADGE[value] || "unknown") }, text(value));
  const labels = (map) => Object.entries(map || {}).map(([name, value]) => name + "=" + value).join(", ") || "–";
  const number = (value) => typeof value === "number" && Number.isFinite(value) ? String(Math.round(value * 1000) / 1000) : "no data";

  async function act(button, work) {
    button.disabled = true;
    try { await work(); route(); } catch (error) {
      button.disabled = false;
      document.getElementById("alerts-message").textContent = error.message;
    }
  }

  function activeTable(alerts) {
    return table([
      { title: "Severity", value: (a) => severity(a.severity) },
      { title: "State", value: (a) => text(a.state) },
      { title: "Rule", value: (a) => a.rule },
      { title: "Labels", value: (a) => labels(a.labels), wrap: true },
      { title: "Value", value: (a) => number(a.value), num: true },
      { title: "Since", value: (a) => when(a.since) },
      { title: "Acknowledged", value: (a) => a.acknowledged ? a.acknowledged.by + (a.acknowledged.note ? " — " + a.acknowledged.note : "") : "–", wrap: true },
      { title: "", value: (a) => el("span", { class: "actions" },
        a.acknowledged ? null : el("button", { class: "ghost", "data-ack": a.id, onclick: (event) => act(event.target, () =>
          send("POST", "alerts/" + a.id + "/ack", { note: document.getElementById("ack-note").value })) }, "Acknowledge"),
        el("button", { class: "ghost", "data-silence": a.id, onclick: (event) => act(event.target, () =>
          send("POST", "alerts/silences", {
            matchers: Object.entries(Object.assign({ alertname: a.rule }, a.labels)).map(([name, value]) => ({ name, value })),
            duration_seconds: Number(document.getElementById("silence-minutes").value) * 60,
            comment: "from the dashboard",
          })) }, "Silence")) },
    ], alerts, "No firing or pending alerts.");
  }

  function silencesTable(silences) {
    return table([
      { title: "Matchers", value: (s) => s.matchers.map((m) => m.name + m.op + m.value).join(", "), wrap: true },
      { title: "Until", value: (s) => when(s.ends_at) },
      { title: "By", value: (s) => text(s.created_by) },
      { title: "", value: (s) => el("button", { class: "ghost", onclick: (event) => act(event.target, () => send("DELETE", "alerts/silences/" + s.id)) }, "End") },
    ], silences, "No silences in force.");
  }

  function historyTable(alerts) {
    return table([
      { title: "Severity", value: (a) => severity(a.severity) },
      { title: "Rule", value: (a) => a.rule },
      { title: "Labels", value: (a) => labels(a.labels), wrap: true },
      { title: "Fired", value: (a) => when(a.fired_at) },
      { title: "Peak", value: (a) => number(a.peak_value), num: true },
      { title: "Acknowledged by", value: (a) => a.acknowledged ? a.acknowledged.by : "–" },
      { title: "Resolved", value: (a) => when(a.resolved_at) },
    ], alerts, "No alerts yet.");
  }

  function rulesTable(rules) {
    return table([
      { title: "Rule", value: (r) => r.name },
      { title: "Signal", value: (r) => r.rule.signal.kind },
      { title: "On", value: (r) => r.enabled ? "on" : "off" },
      { title: "From", value: (r) => r.source },
      { title: "", value: (r) => el("span", { class: "actions" },
        el("button", { class: "ghost", onclick: () => edit(r.rule) }, "Edit"),
        el("button", { class: "ghost", onclick: (event) => act(event.target, () => send("POST", "alerts/rules/" + encodeURIComponent(r.name) + (r.enabled ? "/disable" : "/enable"))) }, r.enabled ? "Disable" : "Enable")) },
    ], rules, "No rules.");
  }

  function edit(rule) {
    document.getElementById("rule-json").value = JSON.stringify(rule, null, 2);
    document.getElementById("rule-json").scrollIntoView();
  }

  // The signal over the last day as a line, the thresholds as dashed lines, and a mark on every
  // point where the rule would have fired.
  function previewChart(body) {
    const points = body.points.filter((p) => typeof p.value === "number");
    const box = el("div", { class: "card", id: "rule-preview" });
    if (!points.length) { box.append("No data for this signal over the last day."); return box; }
    const width = 640, height = 160, pad = 8;
    const times = points.map((p) => new Date(p.time).getTime());
    const limits = [body.thresholds.warning, body.thresholds.critical].filter((v) => typeof v === "number");
    const top = Math.max(...points.map((p) => p.value), ...limits) * 1.1 || 1;
    const first = Math.min(...times), span = Math.max(1, Math.max(...times) - first);
    const x = (t) => pad + (width - 2 * pad) * (t - first) / span;
    const y = (v) => height - pad - (height - 2 * pad) * v / top;
    const svgNs = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(svgNs, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("class", "preview");
    const add = (tag, attributes) => { const node = document.createElementNS(svgNs, tag); for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v); svg.append(node); return node; };
    add("polyline", { points: points.map((p, i) => x(times[i]) + "," + y(p.value)).join(" "), fill: "none", stroke: "var(--accent)", "stroke-width": 2 });
    for (const limit of limits) add("line", { x1: pad, x2: width - pad, y1: y(limit), y2: y(limit), stroke: "var(--warn)", "stroke-dasharray": "4 4" });
    const firing = points.filter((p) => p.level);
    firing.forEach((p) => add("circle", { cx: x(new Date(p.time).getTime()), cy: y(p.value), r: 3.5, fill: p.level === "critical" ? "var(--fail)" : "var(--warn)", class: "would-fire" }));
    box.append(svg, el("p", { class: "muted", id: "preview-summary" }, `${points.length} points over the last day; the thresholds are crossed at ${firing.length}.`));
    return box;
  }

  async function alertsPage() {
    const [active, silences, history, rules] = await Promise.all([
      get("alerts"), get("alerts/silences"), get("alerts/history", { limit: 50 }), get("alerts/rules"),
    ]);
    const ruleJson = el("textarea", { id: "rule-json", rows: 14, cols: 80, spellcheck: "false", "aria-label": "Rule (JSON)" });
    ruleJson.value = JSON.stringify({ name: "MyRule", signal: { kind: "error_rate", group_by: "route" }, window_seconds: 300, thresholds: { warning: 0.05, critical: 0.2 }, for_seconds: 120 }, null, 2);
    const parsed = () => JSON.parse(document.getElementById("rule-json").value);
    const previewSlot = el("div", { id: "preview-slot" });
    show(
      el("h2", {}, "Alerts"),
      el("p", { id: "alerts-message", class: "error", role: "alert" }),
      el("div", { class: "controls" },
        el("label", { for: "ack-note" }, "Note for acknowledgements "), el("input", { id: "ack-note", placeholder: "what is being done" }),
        el("label", { for: "silence-minutes" }, " Silence for (minutes) "), el("input", { id: "silence-minutes", type: "number", min: 1, value: 60 })),
      el("h3", {}, "Firing and pending"), el("div", { id: "active-alerts" }, activeTable(active.alerts)),
      el("h3", {}, "Silences"), silencesTable(silences.silences),
      el("h3", {}, "History"), historyTable(history.alerts),
      el("h3", {}, "Rules"), rulesTable(rules.rules),
      el("h3", {}, "Rule editor"),
      el("div", { class: "card" }, ruleJson, el("div", { class: "actions" },
        el("button", { class: "ghost", id: "rule-preview-button", onclick: async () => {
          try { previewSlot.replaceChildren(previewChart(await send("POST", "alerts/rules/preview", parsed()))); } catch (error) { previewSlot.replaceChildren(el("p", { class: "error" }, error.message)); }
        } }, "Preview over the last day"),
        el("button", { id: "rule-save", onclick: (event) => act(event.target, async () => { const rule = parsed(); await send("PUT", "alerts/rules/" + encodeURIComponent(rule.name), rule); }) }, "Save rule")),
        previewSlot));
  }

  W.page("alerts", alertsPage);
})();
