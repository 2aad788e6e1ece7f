// turnout's release dashboard: plain JS, no build step.
//
// The model is the ReleaseService's: WatchStatus's events, pushed by the server as
// server-sent events (GET /api/v1/events), each a StatusEvent in proto3's JSON mapping
// (snake_case names, 64-bit integers as strings). The first is the SNAPSHOT, whose
// status is GetStatus's answer: the page paints from it, then applies each event in
// order. The browser never polls. Unset messages are absent (and the code reads
// defaults as absent too).
"use strict";

(function () {
  const ACTIONS_ON = document.querySelector('meta[name="turnout-actions"]').content === "on";
  const PAGE_SIZE = 100;
  const MAX_POINTS = 900; // per release chart: 15 minutes at one point a second
  const MAX_DARK_POINTS = 300; // per dark chart: 5 minutes
  const PALETTE = ["#2457c5", "#d9480f", "#2b8a3e", "#ae3ec9", "#e8590c", "#0b7285",
                   "#c2255c", "#5f3dc4", "#66a80f", "#1098ad"];

  const state = {
    status: null,          // the last full Status (services and history from it)
    served: "",
    services: new Map(),   // name -> ServiceStatus
    proxies: new Map(),    // stream_id (string) -> ProxyStatus
    series: new Map(),     // "service|release" or "service|dark|to" -> {points, last}
    landing: null,         // an applied action, followed until the fleet has it
    fleetPage: 0,
  };
  const trace = []; // the last events' [kind, arrival ms] and paints: bench/dashboard.py reads it
  const dirty = new Set();
  const dirtyCards = new Set();
  const dirtyReleases = new Set();
  let frame = 0;

  // -- helpers ---------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const short = (v) => (v ? String(v).slice(0, 12) : "—");
  const seconds = (ts) => (ts ? Date.parse(ts) / 1000 : null);
  function ago(ts) {
    if (!ts) return "";
    const s = Math.max(0, Math.round(Date.now() / 1000 - seconds(ts)));
    if (s < 90) return `${s}s ago`;
    if (s < 5400) return `${Math.round(s / 60)}m ago`;
    return `${Math.round(s / 3600)}h ago`;
  }
  const clock = (ts) => (ts ? new Date(ts).toLocaleTimeString() : "");
  function colour(version) {
    let h = 0;
    for (const c of String(version)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }
  function pct(x, digits) { return x == null ? "—" : (x * 100).toFixed(digits ?? 2) + "%"; }
  function ms(x) { return x == null ? "—" : (x * 1000).toFixed(1) + " ms"; }

  function schedule(...views) {
    for (const v of views) dirty.add(v);
    if (!frame) frame = requestAnimationFrame(render);
  }

  // -- the model: status and events ------------------------------------------------
  // A new full status: the services view redraws only the cards whose service's
  // policy changed (a file write changes one service of 500), unless services came
  // or went.
  function applyStatus(status) {
    const before = state.services;
    state.status = status;
    state.served = status.served_version || "";
    state.services = new Map((status.services || []).map((s) => [s.name, s]));
    state.proxies = new Map((status.proxies || []).map((p) => [p.stream_id, p]));
    for (const s of state.services.values()) record(s);
    const names = [...state.services.keys()];
    if (before.size && names.length === before.size && names.every((n) => before.has(n))) {
      for (const [name, service] of state.services) {
        if (cardKey(service) !== cardKey(before.get(name))) dirtyCards.add(name);
      }
      schedule("cards");
    } else {
      schedule("services");
    }
    schedule("header", "releases", "fleet", "history");
  }

  // What a service card shows (not the live figures, which change every second).
  function cardKey(s) {
    return JSON.stringify([s.stable, s.versions, s.segments, s.endpoints, s.pin_header,
      s.incremental && s.incremental.state, s.incremental && s.incremental.to]);
  }

  function applyService(service, kind) {
    state.services.set(service.name, service);
    record(service);
    dirtyReleases.add(service.name);
    if (kind === "RELEASE_CHANGED" || kind === "ENDPOINTS_CHANGED") {
      dirtyCards.add(service.name); // a card shows the release's phase and healthy/total, not figures
      schedule("cards");
    }
    schedule("release-cards");
  }

  function note(what) {
    trace.push([what, Date.now()]);
    if (trace.length > 64) trace.shift();
  }

  function applyEvent(event) {
    if (event.kind !== "PROXY_ACKED" && event.kind !== "PROXY_SYNCED") note(event.kind);
    if (event.served_version !== undefined) state.served = event.served_version || "";
    switch (event.kind) {
      case "SNAPSHOT":
      case "VERSION_SERVED":
      case "POLICY_REJECTED":
        applyStatus(event.status);
        break;
      case "RELEASE_CHANGED":
      case "RELEASE_DECISION":
      case "DARK_VERDICT":
      case "RELEASE_FIGURES":
      case "ENDPOINTS_CHANGED":
        applyService(event.service, event.kind);
        break;
      case "PROXY_DISCONNECTED":
        state.proxies.delete(event.proxy.stream_id);
        schedule("fleet", "landing");
        break;
      default:
        if (event.proxy) {
          state.proxies.set(event.proxy.stream_id, event.proxy);
          schedule("fleet", "landing");
        }
    }
    schedule("header");
  }

  // Chart points: one per judgement whose figures moved (a release's driver judges
  // every tick, the dark watch every second), from every event carrying a service,
  // kept by the page while it is open. A point is its numbers only, and each chart's
  // series is bounded: 500 mirrored services stay a few MB.
  function record(service) {
    const analysis = service.incremental && service.incremental.analysis;
    if (analysis && analysis.canary) {
      push(`${service.name}|release`, MAX_POINTS, analysis.at, analysis.window_start,
           analysis.canary, analysis.baseline, analysis.checks);
    }
    for (const d of service.dark || []) {
      if (d.dark) push(`${service.name}|dark|${d.to}`, MAX_DARK_POINTS, d.at, d.window_start,
                       d.dark, d.light_figures, d.checks);
    }
  }

  function push(key, bound, at, windowStart, a, b, checks) {
    a = a || {};
    b = b || {};
    const figures = [a.requests, a.errors, a.p50_seconds, a.p99_seconds,
                     b.requests, b.errors, b.p50_seconds, b.p99_seconds].join();
    let s = state.series.get(key);
    if (!s) { s = { points: [], last: null, figures: null }; state.series.set(key, s); }
    if (s.last === at || s.figures === figures) return; // the same judgement, or no news
    s.last = at;
    s.figures = figures;
    const t = seconds(at);
    const p = { t, ws: seconds(windowStart), checks: checks || [], a, b };
    const point = [t];
    for (const [metric, , get] of METRICS) point.push(get(a, p), get(b, p), limitFor(metric, p));
    s.points.push(point);
    if (s.points.length > bound) s.points.splice(0, s.points.length - bound);
    s.changed = true;
  }

  // -- rendering -------------------------------------------------------------------
  function render() {
    frame = 0;
    const view = currentView();
    if (dirty.has("header")) renderHeader();
    if (dirty.has("landing") || dirty.has("header")) renderLanding();
    if (view === "services") {
      if (dirty.has("services")) renderServices();
      else if (dirty.has("cards")) for (const name of dirtyCards) renderCard(name);
      dirtyCards.clear();
      dirty.delete("services"); dirty.delete("cards");
    }
    if (view === "releases") {
      if (dirty.has("releases")) renderReleases(null);
      else if (dirty.has("release-cards")) renderReleases(dirtyReleases);
      dirtyReleases.clear();
      dirty.delete("releases"); dirty.delete("release-cards");
    }
    if (view === "fleet" && dirty.has("fleet")) { renderFleet(); dirty.delete("fleet"); }
    if (view === "history" && dirty.has("history")) { renderHistory(); dirty.delete("history"); }
    dirty.delete("header"); dirty.delete("landing");
    document.body.dataset.served = state.served;
  }

  function renderHeader() {
    const status = state.status || {};
    $("served").textContent = state.served || "nothing yet";
    $("driver").textContent = status.release_driver ? `release driver: ${status.release_driver}` : "";
    const rejected = status.rejected;
    const box = $("rejected");
    if (rejected && (rejected.errors || []).length) {
      box.hidden = false;
      box.innerHTML = `<h2>The policy files were rejected ${esc(ago(rejected.at))}: `
        + `${rejected.errors.length} error(s)</h2>`
        + `<ul>${rejected.errors.map((e) => `<li><code>${esc(e)}</code></li>`).join("")}</ul>`
        + `<p>The previous set is still served: <code>${esc(state.served || "none")}</code>. `
        + `Fix the files and turnout picks them up.</p>`;
    } else {
      box.hidden = true;
      box.innerHTML = "";
    }
  }

  function renderLanding() {
    const box = $("landing");
    const landing = state.landing;
    if (!landing) { box.hidden = true; return; }
    const proxies = [...state.proxies.values()];
    const synced = proxies.filter((p) => p.synced_version === state.served).length;
    const moved = state.served !== landing.before;
    const done = synced === proxies.length;
    if (done && !landing.doneAt) landing.doneAt = Date.now();
    const took = landing.doneAt ? ` in ${((landing.doneAt - landing.at) / 1000).toFixed(1)} s` : "";
    box.hidden = false;
    box.innerHTML = `<b>${esc(landing.summary)}</b>${landing.commit ? ` (commit <code>${esc(landing.commit)}</code>)` : ""}`
      + `<br>${moved ? `serving <code>${esc(short(state.served))}</code>`
                     : "Envoy's config unchanged (only the release state)"}: `
      + `<span id="landing-synced">${synced}/${proxies.length}</span> proxies synced${done ? took : "…"}`;
  }

  // Services ---------------------------------------------------------------------
  function filteredServices() {
    const text = $("service-filter").value.trim().toLowerCase();
    const all = [...state.services.values()];
    return text ? all.filter((s) => s.name.toLowerCase().includes(text)) : all;
  }

  function renderServices() {
    const services = filteredServices();
    $("service-count").textContent = `${services.length} of ${state.services.size} services`;
    $("services").innerHTML = services.map(cardHtml).join("");
    note("services-painted");
    if (state.status && !performance.getEntriesByName("services-painted").length) {
      performance.mark("services-painted"); // the benchmark reads it (bench/dashboard.py)
    }
  }

  function renderCard(name) {
    const el = document.querySelector(`#services .card[data-service="${CSS.escape(name)}"]`);
    const service = state.services.get(name);
    if (el && service) el.outerHTML = cardHtml(service);
  }

  function button(action, label, data, enabled) {
    const attrs = Object.entries(data).map(([k, v]) => ` data-${k}="${esc(v)}"`).join("");
    const off = !ACTIONS_ON || enabled === false;
    const title = !ACTIONS_ON ? "read-only: turnout serve was started without --admin-token-file"
      : (typeof enabled === "string" ? enabled : "");
    return `<button type="button" data-action="${esc(action)}"${attrs}${off ? " disabled" : ""}`
      + `${title ? ` title="${esc(title)}"` : ""}>${esc(label)}</button>`;
  }

  function segmentHtml(service, segment) {
    const rule = segment.is_rule ? segment.name : "";
    let bar;
    let text;
    if (segment.instances) {
      bar = `<div class="bar"><span style="width:100%;background:var(--muted)">instances</span></div>`;
      text = "instances (by healthy endpoints)";
    } else {
      const shares = segment.shares || [];
      bar = `<div class="bar" role="img" aria-label="${esc(shares.map((s) => `${s.version} ${s.percent}%`).join(", "))}">`
        + shares.map((s) => `<span style="width:${Number(s.percent)}%;background:${colour(s.version)}" `
          + `title="${esc(s.version)} ${esc(s.percent)}%">${esc(s.version)}</span>`).join("") + "</div>";
      text = shares.map((s) => `<span class="share" data-version="${esc(s.version)}">${esc(s.version)} ${esc(s.percent)}%</span>`).join(" ");
    }
    if (segment.mirror) {
      text += ` · mirror → ${esc(segment.mirror.to)} ${esc(segment.mirror.percent)}%`;
    }
    const data = { service: service.name };
    if (rule) data.rule = rule;
    const actions = `<span class="actions">${button("set-traffic", "set traffic", data)}`
      + `${button("rollback", rule ? "roll back rule" : "roll back", data)}</span>`;
    return `<span class="segname">${esc(segment.name)}</span>`
      + `<div class="segment" data-segment="${esc(segment.name)}">${bar}<div class="shares">${text}</div></div>`
      + actions;
  }

  function cardHtml(service) {
    const endpoints = new Map((service.endpoints || []).map((e) => [e.version, e]));
    const versions = (service.versions || []).map((v) => {
      const e = endpoints.get(v);
      const total = e ? e.total || 0 : 0;
      const healthy = e && e.healthy !== undefined ? e.healthy : "?";
      const cls = healthy === "?" ? "" : healthy >= total && total > 0 ? "ok" : healthy === 0 ? "bad" : "warn";
      return `<span class="version"><span class="swatch" style="background:${colour(v)}"></span>`
        + `${esc(v)} <span class="badge ${cls}" title="healthy/total endpoints">${esc(healthy)}/${esc(total)}</span>`
        + `${v === service.stable ? ' <span class="badge">stable</span>' : ""}</span>`;
    }).join("");
    const inc = service.incremental;
    const phase = inc && inc.state ? inc.state.phase : inc ? "not started" : "";
    const release = inc ? `<span class="meta">release → ${esc(inc.to)}: <b>${esc(phase)}</b></span>` : "";
    const pin = service.pin_header ? `<span class="meta">pin: <code>${esc(service.pin_header)}: VERSION</code></span>` : "";
    const data = { service: service.name };
    const others = (service.versions || []).filter((v) => v !== service.stable);
    const controls = [
      button("promote", "promote…", data, others.length ? true : "no other version to promote"),
    ];
    if (inc) {
      controls.push(button("pause", "pause", data, phase === "running" ? true : `the release is ${phase}`));
      controls.push(button("resume", "resume", data, phase === "paused" ? true : `the release is ${phase}`));
      const gated = (inc.gates || []).length > 0;
      const approvable = ["pending", "dark", "running", "waiting", "paused", "holding"].includes(phase);
      controls.push(button("approve", "approve…", data,
        !gated ? "this release has no approve gate" : approvable ? true : `the release is ${phase}`));
    }
    return `<div class="card" data-service="${esc(service.name)}">`
      + `<div class="head"><h3>${esc(service.name)}</h3>${release}${pin}`
      + `<span class="spacer"></span><span class="actions">${controls.join("")}</span></div>`
      + `<div class="versions">${versions}</div>`
      + `<div class="segments">${(service.segments || []).map((s) => segmentHtml(service, s)).join("")}</div>`
      + "</div>";
  }

  // Releases ---------------------------------------------------------------------
  const charts = new Map(); // key|metric -> uPlot

  function dropChart(id) {
    const u = charts.get(id);
    if (!u) return;
    const el = u.root.parentNode;
    u.destroy();
    if (el) el.remove();
    charts.delete(id);
  }

  function releaseServices() {
    return [...state.services.values()].filter((s) => s.incremental || (s.dark || []).length);
  }

  function transitions(name) {
    const out = [];
    for (const change of (state.status && state.status.history) || []) {
      for (const r of change.releases || []) {
        if (r.service === name) out.push({ change, r });
      }
    }
    return out.slice(-12).reverse();
  }

  function verdictHtml(outcome) {
    return outcome ? `<span class="verdict ${esc(outcome)}" data-verdict="${esc(outcome)}">${esc(outcome)}</span>` : `<span class="meta">not judged yet</span>`;
  }

  function checksHtml(checks) {
    if (!(checks || []).length) return "";
    return "<ul class=\"transitions\">" + checks.map((c) => `<li>${esc(c.name)}: ${Number(c.value || 0).toPrecision(3)} `
      + `(limit ${Number(c.limit || 0).toPrecision(3)})${c.breached ? " <b>breached</b>" : ""}`
      + `${c.significant ? " significant" : ""}, p=${Number(c.p_value || 0).toPrecision(2)}</li>`).join("") + "</ul>";
  }

  function releaseInfoHtml(service) {
    const inc = service.incremental;
    let html = "";
    if (inc) {
      const st = inc.state;
      const step = st ? st.step || 0 : -1;
      const done = st && (st.phase === "promoted");
      html += `<div class="head"><h3>${esc(service.name)}</h3><span>→ <b>${esc(inc.to)}</b> `
        + `against <b>${esc(service.stable)}</b></span><span class="badge" data-phase="${esc(st ? st.phase : "")}">${esc(st ? st.phase : "not started")}</span>`
        + `${st ? `<span class="meta">since ${esc(clock(st.since))} (${esc(ago(st.since))})</span>` : ""}</div>`;
      const gates = new Set(inc.gates || []);
      const approvals = (st && st.approvals) || [];
      const approved = new Set(approvals.map((a) => a.step || 0));
      html += `<div class="timeline">${(inc.steps || []).map((s, i) => (gates.has(i)
        ? `<span class="step gate ${approved.has(i) ? "done" : ""}" title="an approve gate">${approved.has(i) ? "approved" : "approve"}</span>`
        : "") + `<span class="step ${done || i < step ? "done" : i === step && st ? "current" : ""}">${esc(s)}%</span>`).join("")}</div>`;
      if (st && st.reason) html += `<div class="meta">${esc(st.reason)}</div>`;
      if (inc.window) html += `<div class="meta">release window: ${esc(inc.window)}</div>`;
      for (const a of approvals) {
        html += `<div class="meta">step ${(a.step || 0) + 1} approved by <b>${esc(a.by)}</b> ${esc(clock(a.at))}</div>`;
      }
      const a = inc.analysis;
      if (a) {
        html += `<div>verdict: ${verdictHtml(a.outcome)} · action <b>${esc(a.action)}</b>: ${esc(a.reason)}</div>`;
        if (a.error) html += `<div class="error">${esc(a.error)}</div>`;
        if (a.window_note) html += `<div class="meta">${esc(a.window_note)}</div>`;
        html += checksHtml(a.checks);
      }
      const moves = transitions(service.name);
      if (moves.length) {
        html += "<ul class=\"transitions\">" + moves.map(({ change, r }) => `<li>${esc(clock(change.at))} `
          + `<b>${esc(r.phase)}</b> step ${(r.step || 0) + 1}: ${esc(r.reason)}`
          + `${change.commit ? ` · <code>${esc(change.commit)}</code>` : ""}</li>`).join("") + "</ul>";
      }
    } else {
      html += `<div class="head"><h3>${esc(service.name)}</h3><span class="meta">dark traffic</span></div>`;
    }
    for (const d of service.dark || []) {
      html += `<div>dark <b>${esc(d.to)}</b> against ${esc((d.light || []).join("+"))}: ${verdictHtml(d.outcome)}`
        + ` <span class="meta">over ${Math.round(d.window_seconds || 0)} s${d.note ? " · " + esc(d.note) : ""}</span></div>`;
      if (d.error) html += `<div class="error">${esc(d.error)}</div>`;
    }
    return html;
  }

  // Each release's card is kept (its charts too) and redrawn only when its service
  // changed (`only`: the names; null: all). A service with dark traffic but no
  // incremental release draws its charts only once opened: 500 mirrored services
  // would be 2,000 charts.
  function renderReleases(only) {
    const root = $("releases");
    const services = releaseServices();
    if (!services.length) {
      root.innerHTML = '<p class="meta">No incremental release or dark traffic in the served policies.</p>';
      for (const id of [...charts.keys()]) dropChart(id);
      return;
    }
    const wanted = new Set(services.map((s) => s.name));
    for (const el of [...root.querySelectorAll(".card[data-release]")]) {
      if (!wanted.has(el.dataset.release)) el.remove();
    }
    root.querySelector("p.meta")?.remove();
    const cards = new Map([...root.querySelectorAll(".card[data-release]")].map((el) => [el.dataset.release, el]));
    for (const service of services) {
      let card = cards.get(service.name);
      const kind = service.incremental ? "release" : "dark";
      if (card && card.dataset.kind !== kind) {
        for (const id of [...charts.keys()]) if (id.startsWith(`${service.name}|`)) dropChart(id);
        card.remove();
        card = null;
      }
      if (card && only && !only.has(service.name)) continue;
      if (!card) {
        card = document.createElement("div");
        card.className = "card";
        card.dataset.release = service.name;
        card.dataset.kind = kind;
        if (service.incremental) {
          card.innerHTML = '<div class="info"></div><div class="charts"></div>';
        } else {
          card.innerHTML = '<div class="info"></div><details><summary>charts</summary><div class="charts"></div></details>';
          card.querySelector("details").addEventListener("toggle", () => {
            dirtyReleases.add(service.name);
            schedule("release-cards");
          });
        }
        root.appendChild(card);
      }
      card.querySelector(".info").innerHTML = releaseInfoHtml(service);
      const details = card.querySelector("details");
      const chartsEl = card.querySelector(".charts");
      if (details && !details.open) {
        for (const id of [...charts.keys()]) if (id.startsWith(`${service.name}|`)) dropChart(id);
        continue;
      }
      if (service.incremental) drawCharts(chartsEl, `${service.name}|release`, service.incremental.to, service.stable);
      for (const d of service.dark || []) {
        drawCharts(chartsEl, `${service.name}|dark|${d.to}`, `${d.to} (dark)`, (d.light || []).join("+"));
      }
    }
    for (const [id, u] of [...charts]) {
      if (!document.body.contains(u.root)) dropChart(id);
    }
  }

  const METRICS = [
    ["rps", "requests/s", (f, p) => (f.requests && p.t > p.ws ? Number(f.requests) / (p.t - p.ws) : (f.requests ? null : 0))],
    ["err", "error rate", (f) => (f.error_rate ?? null)],
    ["p50", "p50 latency (ms)", (f) => (f.p50_seconds != null ? f.p50_seconds * 1000 : null)],
    ["p99", "p99 latency (ms)", (f) => (f.p99_seconds != null ? f.p99_seconds * 1000 : null)],
  ];

  function limitFor(metric, p) {
    const check = (name) => (p.checks || []).find((c) => c.name === name);
    if (metric === "err") {
      const abs = check("maxErrorRate");
      if (abs) return abs.limit;
      const inc = check("maxErrorRateIncrease");
      if (inc && p.b.error_rate != null) return p.b.error_rate + inc.limit;
    }
    if (metric === "p99") {
      const abs = check("maxLatencyP99");
      if (abs) return abs.limit * 1000;
      const inc = check("maxLatencyP99Increase");
      if (inc && p.b.p99_seconds != null) {
        return Math.max(inc.limit * p.b.p99_seconds, p.b.p99_seconds + 0.010) * 1000;
      }
    }
    return null;
  }

  function drawCharts(container, key, aLabel, bLabel) {
    const series = state.series.get(key) || { points: [] };
    const points = series.points;
    const xs = points.map((p) => p[0]);
    METRICS.forEach(([metric, title], i) => {
      const id = `${key}|${metric}`;
      const at = 1 + 3 * i; // a point: [t, then per metric: a, b, limit]
      const data = [xs, points.map((p) => p[at]), points.map((p) => p[at + 1]),
                    points.map((p) => p[at + 2])];
      let u = charts.get(id);
      if (u && u.root.parentNode.parentNode !== container) { dropChart(id); u = null; }
      if (!u) {
        const el = document.createElement("div");
        el.className = "chart";
        el.dataset.chart = id;
        container.appendChild(el);
        const styles = getComputedStyle(document.body);
        const axis = { stroke: styles.color, grid: { stroke: "rgba(128,128,128,.2)" } };
        u = new uPlot({
          title, width: Math.max(260, el.clientWidth - 12), height: 150,
          scales: { x: { time: true } },
          axes: [axis, { ...axis, size: 50 }],
          series: [{}, { label: aLabel, stroke: colour(aLabel.split(" ")[0]), width: 2 },
                   { label: bLabel, stroke: colour(bLabel.split("+")[0]), width: 2 },
                   { label: "threshold", stroke: "#b3261e", dash: [6, 4], width: 1 }],
          legend: { live: false },
        }, data, el);
        charts.set(id, u);
      } else if (series.changed !== false) {
        u.setData(data);
      }
      u.root.parentNode.dataset.points = String(points.length);
    });
    series.changed = false;
  }

  // Fleet ------------------------------------------------------------------------
  function proxyState(p) {
    if (p.behind) return "behind";
    return p.synced_version ? "synced" : "connecting";
  }

  function renderFleet() {
    const proxies = [...state.proxies.values()];
    const counts = { total: proxies.length, synced: 0, behind: 0, connecting: 0, nacked: 0 };
    for (const p of proxies) {
      counts[proxyState(p)] += 1;
      if (p.last_nack) counts.nacked += 1;
    }
    $("fleet-counts").innerHTML = Object.entries(counts)
      .map(([k, v]) => `<span data-count="${k}"><b>${v}</b> ${k}</span>`).join("");
    const text = $("fleet-filter").value.trim().toLowerCase();
    const want = $("fleet-state").value;
    let rows = proxies;
    if (want) rows = rows.filter((p) => (want === "nacked" ? !!p.last_nack : proxyState(p) === want));
    if (text) {
      rows = rows.filter((p) => [p.node_id, p.node_cluster, p.stream_kind, p.synced_version,
        p.last_nack && p.last_nack.message].some((v) => v && String(v).toLowerCase().includes(text)));
    }
    rows.sort((x, y) => Number(x.stream_id) - Number(y.stream_id));
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    state.fleetPage = Math.min(state.fleetPage, pages - 1);
    const start = state.fleetPage * PAGE_SIZE;
    $("fleet-page").textContent = `${rows.length ? start + 1 : 0}–${Math.min(rows.length, start + PAGE_SIZE)} of ${rows.length}`;
    $("fleet-prev").disabled = state.fleetPage === 0;
    $("fleet-next").disabled = state.fleetPage >= pages - 1;
    $("fleet-rows").innerHTML = rows.slice(start, start + PAGE_SIZE).map((p) => {
      const types = new Map((p.types || []).map((t) => [t.type, t]));
      const cells = ["CDS", "EDS", "LDS", "RDS"].map((name) => {
        const t = types.get(name);
        if (!t) return "<td class=\"meta\">—</td>";
        const lag = t.sent_version && t.sent_version !== t.acked_version;
        return `<td class="mono"${lag ? ` title="sent ${esc(t.sent_version)}"` : ""}>${esc(short(t.acked_version))}${lag ? " …" : ""}</td>`;
      }).join("");
      const st = proxyState(p);
      const since = st === "behind" ? p.behind_since : st === "synced" ? p.synced_at : p.connected_at;
      const nack = p.last_nack;
      return `<tr data-stream="${esc(p.stream_id)}"><td>${esc(p.node_id)}</td><td>${esc(p.node_cluster)}</td>`
        + `<td>${esc(p.stream_kind)}</td>${cells}<td><span class="badge ${st === "synced" ? "ok" : "warn"}">${st}</span></td>`
        + `<td title="${esc(since)}">${esc(ago(since))}</td>`
        + `<td class="nack" title="${esc(nack ? nack.message : "")}">${nack ? `${esc(nack.type_url.split(".").pop())} ${esc(ago(nack.at))}: ${esc(nack.message)}` : ""}</td></tr>`;
    }).join("");
  }

  // History ----------------------------------------------------------------------
  function renderHistory() {
    const history = ((state.status && state.status.history) || []).slice().reverse();
    $("history-rows").innerHTML = history.length ? history.map((c) => `<tr data-accepted="${c.accepted ? "yes" : "no"}">`
      + `<td title="${esc(c.at)}">${esc(clock(c.at))}</td>`
      + `<td><span class="badge ${c.accepted ? "ok" : "bad"}">${c.accepted ? "accepted" : "rejected"}</span></td>`
      + `<td class="mono">${esc(short(c.version))}</td><td>${esc(c.summary)}</td>`
      + `<td class="mono">${esc(c.commit)}</td></tr>`).join("")
      : '<tr><td colspan="5" class="meta">No policy change since turnout started.</td></tr>';
  }

  // -- views -------------------------------------------------------------------------
  function currentView() {
    const v = (location.hash || "#services").slice(1);
    return ["services", "releases", "fleet", "history"].includes(v) ? v : "services";
  }

  function showView() {
    const view = currentView();
    for (const s of document.querySelectorAll("main > section")) s.hidden = s.dataset.view !== view;
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view);
    schedule(view === "services" ? "services" : view);
  }

  // -- actions -----------------------------------------------------------------------
  const TOKEN_KEY = "turnout-admin-token";
  let pending = null; // {action, body, digest}

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function setupMode() {
    const mode = $("mode");
    if (!ACTIONS_ON) {
      mode.innerHTML = '<span class="mode-ro" id="read-only">read-only: actions are off '
        + "(start turnout serve with --admin-token-file to turn them on)</span>";
      return;
    }
    mode.innerHTML = '<form id="token-form"><span class="mode-on">actions on</span> '
      + '<input id="token" type="password" autocomplete="off" placeholder="admin token" '
      + 'aria-label="admin token" size="18"></form>';
    $("token-form").addEventListener("submit", (event) => event.preventDefault());
    const input = $("token");
    input.value = token();
    input.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, input.value.trim()));
  }

  async function post(action, body) {
    const response = await fetch(`/api/v1/actions/${encodeURIComponent(action)}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": `Bearer ${token()}` },
      body: JSON.stringify(body),
      credentials: "omit",
    });
    const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    return answer;
  }

  function diffHtml(diff) {
    return diff.split("\n").map((line) => {
      const cls = line.startsWith("+") && !line.startsWith("+++") ? "add"
        : line.startsWith("-") && !line.startsWith("---") ? "del" : "";
      return cls ? `<span class="${cls}">${esc(line)}</span>` : esc(line);
    }).join("\n");
  }

  function openAction(action, data) {
    const service = state.services.get(data.service);
    if (!service) return;
    pending = { action, body: { service: data.service }, digest: null };
    if (data.rule) pending.body.rule = data.rule;
    const segment = data.rule || "default";
    $("action-title").textContent = `${action} ${data.service}${data.rule ? ` rule ${data.rule}` : ""}`;
    $("action-summary").textContent = "";
    $("action-diff").innerHTML = "";
    $("action-error").textContent = "";
    $("action-apply").disabled = true;
    const inputs = $("action-inputs");
    inputs.innerHTML = "";
    if (action === "set-traffic") {
      const seg = (service.segments || []).find((s) => s.name === segment) || {};
      const shares = new Map((seg.shares || []).map((s) => [s.version, s.percent]));
      inputs.innerHTML = '<div class="inputs-grid">' + (service.versions || []).map((v) => `<label for="share-${esc(v)}">${esc(v)} %</label>`
        + `<input id="share-${esc(v)}" data-version="${esc(v)}" inputmode="decimal" value="${esc(shares.get(v) || "0")}">`).join("")
        + "</div>";
    } else if (action === "approve") {
      inputs.innerHTML = '<label>approve as <input id="approve-by" autocomplete="name" '
        + `value="${esc(sessionStorage.getItem("turnout-approver") || "")}" placeholder="your name"></label>`;
    } else if (action === "promote") {
      inputs.innerHTML = `<label>version <select id="promote-version">${(service.versions || [])
        .filter((v) => v !== service.stable).map((v) => `<option${service.incremental && service.incremental.to === v ? " selected" : ""}>${esc(v)}</option>`).join("")}</select></label>`;
    }
    $("action-dialog").showModal();
    if (!["set-traffic", "promote", "approve"].includes(action)) preview();
  }

  function collect() {
    if (pending.action === "set-traffic") {
      const shares = {};
      for (const input of $("action-inputs").querySelectorAll("input[data-version]")) {
        const value = input.value.trim();
        if (value && Number(value) !== 0) shares[input.dataset.version] = value;
      }
      pending.body.shares = shares;
    } else if (pending.action === "promote") {
      pending.body.version = $("promote-version").value;
    } else if (pending.action === "approve") {
      pending.body.by = $("approve-by").value.trim();
      sessionStorage.setItem("turnout-approver", pending.body.by);
    }
  }

  async function preview() {
    collect();
    $("action-error").textContent = "";
    $("action-apply").disabled = true;
    try {
      const answer = await post(pending.action, { ...pending.body, dry_run: true });
      pending.digest = answer.digest;
      $("action-summary").textContent = answer.changed ? answer.summary : `nothing to change: ${answer.summary}`;
      $("action-diff").innerHTML = diffHtml(answer.diff);
      $("action-apply").disabled = !answer.changed;
    } catch (err) {
      $("action-error").textContent = err.message;
    }
  }

  async function apply() {
    $("action-apply").disabled = true;
    try {
      const before = state.served;
      const answer = await post(pending.action, { ...pending.body, preview: pending.digest });
      state.landing = { summary: answer.summary, before, at: Date.now(), commit: answer.commit };
      if (answer.commit_error) state.landing.summary += ` (${answer.commit_error})`;
      $("action-dialog").close();
      schedule("landing");
    } catch (err) {
      $("action-error").textContent = err.message;
    }
  }

  // -- wiring ------------------------------------------------------------------------
  function connect() {
    const source = new EventSource("/api/v1/events");
    source.onopen = () => { $("live").textContent = "live"; $("live").className = "meta up"; };
    source.onerror = () => { $("live").textContent = "reconnecting…"; $("live").className = "meta down"; };
    source.onmessage = (message) => {
      if (!state.status) state.firstEventAt = Date.now(); // the SNAPSHOT's arrival (bench)
      applyEvent(JSON.parse(message.data));
    };
  }

  function start() {
    setupMode();
    window.addEventListener("hashchange", showView);
    $("service-filter").addEventListener("input", () => schedule("services"));
    $("fleet-filter").addEventListener("input", () => { state.fleetPage = 0; schedule("fleet"); });
    $("fleet-state").addEventListener("change", () => { state.fleetPage = 0; schedule("fleet"); });
    $("fleet-prev").addEventListener("click", () => { state.fleetPage -= 1; schedule("fleet"); });
    $("fleet-next").addEventListener("click", () => { state.fleetPage += 1; schedule("fleet"); });
    document.addEventListener("click", (event) => {
      const target = event.target.closest("button[data-action]");
      if (!target || target.disabled || !ACTIONS_ON) return;
      openAction(target.dataset.action, { service: target.dataset.service, rule: target.dataset.rule });
    });
    $("action-preview").addEventListener("click", preview);
    $("action-apply").addEventListener("click", apply);
    $("action-cancel").addEventListener("click", () => $("action-dialog").close());
    showView();
    connect();
    // relative times ("12s ago") age without events: redraw the header's and fleet's
    setInterval(() => schedule("header", "fleet"), 5000);
  }

  window.turnoutDashboard = { state, trace }; // for tests, the benchmark and the curious
  start();
})();
