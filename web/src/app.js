// Recon graph page: archived series from /api/v1/series (raw points or
// min/max/avg buckets), live points from ad-hoc clones streamed over
// /api/v1/stream, alert states from /api/v1/alerts and transitions from
// /api/v1/alerts/stream marked on the chart.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const NS = 1e9;
  const LIVE_SPAN = 120; // seconds shown while live
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  const MARK_COLORS = { critical: "#c00", warning: "#e80", ok: "#090" };

  const state = {
    selected: [], // {source, metric}
    from: 0, // seconds
    to: 0,
    points: 0, // 0: the chart's width in pixels
    series: [], // last answer per selection: {sel, series: [...]}
    live: null, // {clones: [{id, name, source}], es, points: Map}
    marks: [], // streamed transitions: {t (s), rule, severity, previous}
    archivedMarks: [], // transitions archived in the range shown
    marksDrawn: 0,
    rulesDrawn: [], // the rule of each mark drawn
    loads: 0,
    error: "",
  };
  let plot = null;
  let fetchSeq = 0;

  // ---- URL state: #source=a&metric=m&source=b&metric=n&from=..&to=..&points=..
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const sources = p.getAll("source"), metrics = p.getAll("metric");
    state.selected = sources.map((s, i) => ({ source: s, metric: metrics[i] || "" })).filter((s) => s.metric);
    const now = Date.now() / 1000;
    state.to = num(p.get("to")) || now;
    state.from = num(p.get("from")) || state.to - 3600;
    state.points = num(p.get("points")) || 0;
  }
  function writeHash() {
    const p = new URLSearchParams();
    for (const s of state.selected) { p.append("source", s.source); p.append("metric", s.metric); }
    p.set("from", state.from.toFixed(3));
    p.set("to", state.to.toFixed(3));
    if (state.points) p.set("points", String(state.points));
    history.replaceState(null, "", "#" + p.toString());
  }
  function num(s) { const v = Number(s); return s != null && s !== "" && isFinite(v) ? v : 0; }

  function setStatus(msg, isError) {
    const el = $("status");
    el.textContent = msg;
    el.className = isError ? "error" : "";
    if (isError) state.error = msg;
  }

  async function getJSON(url, init) {
    const r = await fetch(url, init);
    const body = await r.text();
    let data = null;
    try { data = body ? JSON.parse(body) : null; } catch (e) { /* not JSON */ }
    if (!r.ok) {
      const msg = (data && data.error) || body || r.statusText;
      const err = new Error(r.status + ": " + msg);
      err.status = r.status;
      throw err;
    }
    return data;
  }

  // ---- catalog and picker
  let catalog = [];
  async function loadCatalog() {
    try {
      catalog = (await getJSON("api/v1/catalog")).sources || [];
    } catch (e) {
      setStatus("catalog: " + e.message, true);
    }
    const src = $("source");
    src.replaceChildren(...catalog.map((c) => new Option(c.source, c.source)));
    fillMetrics();
  }
  function fillMetrics() {
    const c = catalog.find((x) => x.source === $("source").value);
    $("metric").replaceChildren(...(c ? c.metrics : []).map((m) => new Option(m, m)));
  }
  function renderSelected() {
    const box = $("selected");
    box.replaceChildren(...state.selected.map((s, i) => {
      const span = document.createElement("span");
      span.textContent = s.source + " · " + s.metric;
      const rm = document.createElement("button");
      rm.textContent = "×";
      rm.title = "remove";
      rm.onclick = () => { state.selected.splice(i, 1); changed(); };
      span.append(rm);
      return span;
    }));
  }

  // ---- history
  async function load() {
    const seq = ++fetchSeq;
    writeHash();
    renderSelected();
    const width = Math.max(100, Math.round($("chart").clientWidth || 800));
    const points = state.points || width;
    const from = Math.floor(state.from * NS), to = Math.ceil(state.to * NS);
    setStatus("loading…");
    try {
      const range = new URLSearchParams({ from: String(from), to: String(to) });
      // Archived transitions are a nicety: a failure leaves the marks out.
      const archived = getJSON("api/v1/alerts/history?" + range).then((r) => r.transitions, () => []);
      const answers = await Promise.all(state.selected.map((sel) => {
        const q = new URLSearchParams({ source: sel.source, metric: sel.metric, from: String(from), to: String(to), points: String(points) });
        return getJSON("api/v1/series?" + q).then((res) => ({ sel, res }));
      }));
      const transitions = await archived;
      if (seq !== fetchSeq) return; // a newer range was asked for meanwhile
      state.series = answers;
      state.archivedMarks = transitions.map((a) => ({ t: a.t / NS, rule: a.rule, severity: a.severity, previous: a.previous }));
      state.loads++;
      state.error = "";
      const n = answers.reduce((a, x) => a + x.res.series.reduce((b, s) => b + s.count, 0), 0);
      const scan = answers.reduce((a, x) => a + x.res.scan.files, 0);
      setStatus((state.live ? "live: " + state.live.clones.map((c) => c.name).join(", ") + "; " : "") +
        n + " archived points in range, " + scan + " files read");
      draw();
    } catch (e) {
      if (seq === fetchSeq) setStatus("history: " + e.message, true);
    }
  }

  // Build uPlot's aligned data and series options from the answers plus
  // live points.
  function chartData() {
    const tables = [], opts = [], bands = [], info = [];
    let color = 0;
    for (const { sel, res } of state.series) {
      for (const s of withLiveTargets(sel, res.series)) {
        const c = COLORS[color++ % COLORS.length];
        const label = s.source + " · " + s.metric + (s.target ? " @" + s.target : "");
        const xs = s.t.map((t) => t / NS);
        const live = liveFor(sel, s.target);
        if (s.raw) {
          const ys = s.v.slice();
          for (const [t, v] of live) { xs.push(t); ys.push(v); }
          tables.push([xs, ys]);
          opts.push({ label, stroke: c, width: 1.5, spanGaps: true, points: { show: xs.length < 400, size: 4 } });
          info.push({ label, raw: true, points: xs.length, live: live.length });
        } else {
          const lx = live.map((p) => p[0]), lv = live.map((p) => p[1]);
          tables.push([xs.concat(lx), s.max.concat(lv), s.avg.concat(lv), s.min.concat(lv)]);
          const base = opts.length + 1;
          opts.push({ label: label + " max", stroke: c + "55", width: 1, spanGaps: true });
          opts.push({ label: label + " avg", stroke: c, width: 1.5, spanGaps: true });
          opts.push({ label: label + " min", stroke: c + "55", width: 1, spanGaps: true });
          bands.push({ series: [base, base + 2], fill: c + "22" });
          info.push({ label, raw: false, points: xs.length, buckets: xs.length, bucketNS: s.bucket_ns, live: live.length });
        }
      }
    }
    return { data: tables.length ? uPlot.join(tables) : [[]], opts, bands, info };
  }

  // withLiveTargets adds an empty raw series for each target that only the
  // live stream has points of (nothing archived in the range yet).
  function withLiveTargets(sel, series) {
    if (!state.live) return series;
    const out = series.slice(), have = new Set(series.map((s) => s.target));
    const prefix = sel.source + "\u0000" + sel.metric + "\u0000";
    for (const key of state.live.points.keys()) {
      if (!key.startsWith(prefix)) continue;
      const target = key.slice(prefix.length);
      if (have.has(target)) continue;
      have.add(target);
      out.push({ source: sel.source, metric: sel.metric, target, raw: true, count: 0, t: [], v: [] });
    }
    return out;
  }

  function liveFor(sel, target) {
    if (!state.live) return [];
    return state.live.points.get(sel.source + "\u0000" + sel.metric + "\u0000" + target) || [];
  }

  function draw() {
    const { data, opts, bands, info } = chartData();
    state.info = info;
    const el = $("chart");
    const width = Math.max(300, el.clientWidth || 800);
    if (plot) plot.destroy();
    plot = new uPlot({
      width,
      height: 400,
      series: [{}].concat(opts),
      bands,
      scales: { x: { time: true, auto: false, range: () => [state.from, state.to] } },
      axes: [{}, { size: 70, values: (u, vals) => vals.map(fmtValue) }],
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 3) return;
          const a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, width: 0 }, false);
          setRange(a, b);
        }],
        draw: [drawMarks],
      },
    }, data, el);
  }

  // fmtValue keeps three significant digits, whatever the magnitude (check
  // durations are often fractions of a millisecond).
  function fmtValue(v) {
    if (v == null) return "";
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e6 || a < 1e-3) return v.toExponential(2);
    return String(Number(v.toPrecision(3)));
  }

  function drawMarks(u) {
    const ctx = u.ctx, { top, height } = u.bbox;
    let drawn = 0;
    const rules = [];
    ctx.save();
    ctx.font = Math.round(11 * devicePixelRatio) + "px sans-serif";
    const seen = new Set();
    for (const m of state.archivedMarks.concat(state.marks)) {
      if (m.t < state.from || m.t > state.to) continue;
      const key = m.rule + "|" + m.severity + "|" + Math.round(m.t * 1000);
      if (seen.has(key)) continue; // streamed and archived both
      seen.add(key);
      const x = Math.round(u.valToPos(m.t, "x", true));
      ctx.strokeStyle = ctx.fillStyle = MARK_COLORS[m.severity] || "#555";
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      ctx.fillText(m.rule + ": " + m.previous + " → " + m.severity, x + 4, top + 12 * devicePixelRatio * (1 + (drawn % 3)));
      drawn++;
      rules.push(m.rule);
    }
    ctx.restore();
    state.marksDrawn = drawn;
    state.rulesDrawn = rules;
  }

  function setRange(from, to) {
    if (!(to > from)) return;
    state.from = from;
    state.to = to;
    if (state.live) stopLive();
    load();
  }

  function changed() {
    if (state.live) restartLive();
    load();
  }

  // ---- live
  async function startLive() {
    const token = $("token").value;
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const sources = [...new Set(state.selected.map((s) => s.source))];
    const live = { clones: [], es: null, points: new Map(), redraw: 0 };
    state.live = live;
    try {
      for (const source of sources) {
        const info = await getJSON("api/v1/clones", {
          method: "POST", headers, body: JSON.stringify({ source, period: "1s", ttl: "15m" }),
        });
        live.clones.push(info);
      }
    } catch (e) {
      setStatus("live: " + (e.status === 401 ? "the clone needs the control-plane token (" + e.message + ")" : e.message), true);
      stopLive();
      $("live").checked = false;
      return;
    }
    if (state.live !== live) return;
    const bySource = new Map(live.clones.map((c) => [c.name, c.source]));
    const metrics = [...new Set(state.selected.map((s) => s.metric))];
    const q = new URLSearchParams({ source: live.clones.map((c) => c.name).join(","), metric: metrics.join(","), clone: live.clones.map((c) => c.id).join(",") });
    live.es = new EventSource("api/v1/stream?" + q);
    live.es.addEventListener("sample", (ev) => {
      const s = JSON.parse(ev.data);
      if (s.value == null) return;
      const key = (bySource.get(s.source) || s.source) + "\u0000" + s.metric + "\u0000" + s.target;
      let pts = live.points.get(key);
      if (!pts) live.points.set(key, (pts = []));
      pts.push([Date.parse(s.ts) / 1000, s.value]);
      scheduleRedraw();
    });
    live.es.addEventListener("end", (ev) => setStatus("live: " + JSON.parse(ev.data).message, true));
    live.es.addEventListener("dropped", (ev) => setStatus("live: " + JSON.parse(ev.data).message, true));
    setStatus("live: " + live.clones.map((c) => c.name).join(", "));
    followNow();
  }

  function followNow() {
    const now = Date.now() / 1000;
    state.to = now + 5;
    state.from = now - LIVE_SPAN;
    load();
  }

  function scheduleRedraw() {
    const live = state.live;
    if (!live || live.redraw) return;
    live.redraw = setTimeout(() => {
      live.redraw = 0;
      if (state.live !== live) return;
      const now = Date.now() / 1000;
      if (now + 1 > state.to) { state.to = now + 5; state.from = state.to - LIVE_SPAN - 5; }
      draw();
    }, 250);
  }

  function stopLive() {
    const live = state.live;
    state.live = null;
    if (!live) return;
    clearTimeout(live.redraw);
    if (live.es) live.es.close(); // the clones end when their last viewer leaves
    $("live").checked = false;
  }

  function restartLive() { stopLive(); $("live").checked = true; startLive(); }

  // ---- alerts
  async function loadAlerts() {
    const body = $("alerts").tBodies[0];
    try {
      const states = (await getJSON("api/v1/alerts")).alerts || [];
      body.replaceChildren(...states.map((a) => {
        const tr = document.createElement("tr");
        for (const [text, cls] of [[a.rule], [groupText(a.group)], [a.severity, a.severity], [a.since || a.time], [a.message || ""]]) {
          const td = document.createElement("td");
          td.textContent = text;
          if (cls) td.className = cls;
          tr.append(td);
        }
        return tr;
      }));
      if (!states.length) body.innerHTML = "<tr><td colspan=5>no alert is firing</td></tr>";
    } catch (e) {
      body.innerHTML = "";
      const tr = body.insertRow(), td = tr.insertCell();
      td.colSpan = 5;
      td.textContent = e.status === 404 ? "this recond runs no rules" : "alerts: " + e.message;
    }
  }
  function groupText(g) {
    if (!g || typeof g !== "object") return g ? String(g) : "";
    return Object.entries(g).map(([k, v]) => k + "=" + v).join(" ");
  }
  function followAlerts() {
    const es = new EventSource("api/v1/alerts/stream");
    es.addEventListener("alert", (ev) => {
      const a = JSON.parse(ev.data);
      state.marks.push({ t: Date.parse(a.time) / 1000, rule: a.rule, severity: a.severity, previous: a.previous });
      loadAlerts();
      if (plot) plot.redraw(false, false);
    });
  }

  // ---- wiring
  function init() {
    readHash();
    $("token").value = sessionStorage.getItem("recon-token") || "";
    $("token").onchange = () => sessionStorage.setItem("recon-token", $("token").value);
    $("source").onchange = fillMetrics;
    $("picker").onsubmit = (e) => {
      e.preventDefault();
      const sel = { source: $("source").value, metric: $("metric").value };
      if (sel.source && sel.metric && !state.selected.some((s) => s.source === sel.source && s.metric === sel.metric)) {
        state.selected.push(sel);
        changed();
      }
    };
    for (const b of document.querySelectorAll("#range [data-span]")) {
      b.onclick = () => { const to = Date.now() / 1000; setRange(to - Number(b.dataset.span), to); };
    }
    const span = () => state.to - state.from;
    $("pan-left").onclick = () => setRange(state.from - span() / 2, state.to - span() / 2);
    $("pan-right").onclick = () => setRange(state.from + span() / 2, state.to + span() / 2);
    $("zoom-out").onclick = () => { const s = span(); setRange(state.from - s / 2, state.to + s / 2); };
    $("now").onclick = () => { const s = span(), to = Date.now() / 1000; setRange(to - s, to); };
    $("live").onchange = (e) => (e.target.checked ? startLive() : (stopLive(), load()));
    addEventListener("hashchange", () => { readHash(); load(); });
    let resize = 0;
    addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(draw, 200); });
    loadCatalog();
    loadAlerts();
    followAlerts();
    load();
  }

  // Read-only view of the page's state, for people debugging in the
  // console and for the browser tests.
  window.reconGraph = {
    state: () => ({
      loads: state.loads,
      from: state.from,
      to: state.to,
      live: state.live ? state.live.clones.map((c) => c.name) : null,
      series: state.info || [],
      marks: state.marks.length,
      archivedMarks: state.archivedMarks.length,
      marksDrawn: state.marksDrawn,
      rulesDrawn: state.rulesDrawn,
      error: state.error,
    }),
  };

  init();
})();
