// harn-trace viewer: one self-contained page, no network. The Python side
// (export/_viewer/data.py) has already laid spans out in rows; this script
// only culls and draws what is in view, so 100k spans stay interactive:
// spans in view become elements (data-span-id), up to MAX_DOM of them (the
// widest win); the rest of what is in view is painted on a canvas, and
// spans narrower than a pixel behind an already drawn one are skipped.
(function () {
  "use strict";
  const t0 = performance.now();
  const D = JSON.parse(document.getElementById("harn-trace-data").textContent);
  const tParsed = performance.now();
  const S = D.span, N = D.count, ROW = 18, MAX_DOM = 2500, MAX_LINKS = 1500;
  const start = Float64Array.from(S.start), dur = Float64Array.from(S.dur);
  const end = new Float64Array(N);
  for (let i = 0; i < N; i++) end[i] = start[i] + dur[i];
  const rowOf = Int32Array.from(S.row), kindOf = Int32Array.from(S.kind), nameOf = Int32Array.from(S.name);
  const idOf = S.id, traceOf = S.trace;
  const ROWS = D.rows;
  let maxEnd = 1;
  for (let i = 0; i < N; i++) if (end[i] > maxEnd) maxEnd = end[i];

  // Spans of each row, sorted by start: a row never overlaps itself, so its
  // ends are sorted too and both can be binary searched.
  const order = new Uint32Array(N);
  for (let i = 0; i < N; i++) order[i] = i;
  order.sort((a, b) => start[a] - start[b] || a - b);
  const rowStart = new Int32Array(ROWS + 1);
  for (let i = 0; i < N; i++) rowStart[rowOf[i] + 1]++;
  for (let r = 0; r < ROWS; r++) rowStart[r + 1] += rowStart[r];
  const byRow = new Int32Array(N), fill = rowStart.slice(0, ROWS);
  for (let k = 0; k < N; k++) { const i = order[k]; byRow[fill[rowOf[i]]++] = i; }
  const byKey = new Map();
  for (let i = 0; i < N; i++) { const key = traceOf[i] + ":" + idOf[i]; if (!byKey.has(key)) byKey.set(key, i); }
  const tLaidOut = performance.now();

  const PALETTE = {
    pipeline: "#334155", fn_call: "#0f766e", llm_call: "#7c3aed", tool_call: "#0891b2",
    parallel: "#b45309", spawn: "#d97706", step: "#15803d", import: "#64748b",
    pool_submit: "#1d4ed8", pool_dequeue: "#2563eb", channel_emit: "#059669",
    channel_match: "#10b981", suspension: "#9f1239", resume: "#be123c", user_timing: "#4d7c0f",
    model_route: "#a21caf", tool_mount: "#0e7490",
  };
  function colorOf(kind) {
    if (PALETTE[kind]) return PALETTE[kind];
    let h = 0;
    for (const c of kind) h = (h * 31 + c.charCodeAt(0)) % 360;
    return "hsl(" + h + ",55%,42%)";
  }
  const kindColor = D.kinds.map(colorOf);

  const $ = (id) => document.getElementById(id);
  const scroller = $("scroller"), content = $("content"), spanLayer = $("spans");
  const arrowLayer = $("arrow-layer"), svg = $("arrows"), canvas = $("dense");
  const ruler = $("ruler"), labelsInner = $("labels-inner"), details = $("details");
  const state = { viewStart: 0, nsPerPx: 1, hidden: new Uint8Array(D.kinds.length), query: "",
    match: null, matchList: [], matchAt: -1, selected: -1, drawn: 0, painted: 0, arrows: 0,
    fitted: true };

  // -- header ---------------------------------------------------------------
  function fmtNs(ns) {
    const a = Math.abs(ns);
    if (a >= 1e9) return (ns / 1e9).toFixed(a >= 1e10 ? 1 : 2) + " s";
    if (a >= 1e6) return (ns / 1e6).toFixed(a >= 1e7 ? 0 : 1) + " ms";
    if (a >= 1e3) return (ns / 1e3).toFixed(a >= 1e4 ? 0 : 1) + " µs";
    return Math.round(ns) + " ns";
  }
  function fmtUsage(u) {
    if (!u || !(u[0] || u[1] || u[2] || u[3])) return "";
    let text = (u[1] + u[2]) + " tokens (" + u[1] + " in, " + u[2] + " out)";
    if (u[3]) text += ", $" + u[3];
    return text;
  }
  $("title").textContent = D.title;
  document.title = D.title + " - harn-trace viewer";
  $("totals").textContent = D.traces.map((t) => {
    const usage = fmtUsage(t.usage);
    return t.spans + " spans, " + fmtNs(t.elapsed) + " elapsed" + (usage ? ", " + usage : "");
  }).join(" | ");
  const kindBox = $("kinds");
  D.kinds.forEach((kind, k) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = true; box.dataset.kind = kind;
    box.addEventListener("change", () => { state.hidden[k] = box.checked ? 0 : 1; render(); });
    const swatch = document.createElement("span");
    swatch.className = "swatch"; swatch.style.background = kindColor[k];
    label.append(box, swatch, document.createTextNode(kind));
    kindBox.append(label);
  });

  // -- drawing --------------------------------------------------------------
  function firstEndingAfter(lo, hi, t) {
    while (lo < hi) { const m = (lo + hi) >> 1; if (end[byRow[m]] < t) lo = m + 1; else hi = m; }
    return lo;
  }
  function firstStartingFrom(lo, hi, t) {
    while (lo < hi) { const m = (lo + hi) >> 1; if (start[byRow[m]] < t) lo = m + 1; else hi = m; }
    return lo;
  }
  const xOf = (t) => (t - state.viewStart) / state.nsPerPx;

  let pending = false;
  function render() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }

  function draw() {
    const width = scroller.clientWidth, height = scroller.clientHeight, top = scroller.scrollTop;
    const viewEnd = state.viewStart + width * state.nsPerPx;
    const r0 = Math.max(0, Math.floor(top / ROW) - 2);
    const r1 = Math.min(ROWS - 1, Math.ceil((top + height) / ROW) + 2);
    const items = [];
    for (let r = r0; r <= r1; r++) {
      const lo = rowStart[r], hi = rowStart[r + 1];
      let k = firstEndingAfter(lo, hi, state.viewStart);
      const last = firstStartingFrom(k, hi, viewEnd + 1e-9);
      const dense = last - k > width;  // more spans than pixels: skip what hides behind
      while (k < last) {
        const i = byRow[k];
        if (state.hidden[kindOf[i]]) { k++; continue; }
        const x0 = xOf(start[i]), x1 = xOf(end[i]);
        items.push(i);
        if (dense && x1 - x0 < 2) {
          k = Math.max(k + 1, firstStartingFrom(k + 1, last, state.viewStart + (Math.floor(x1) + 1) * state.nsPerPx));
        } else k++;
      }
    }
    let domItems = items, canvasItems = [];
    if (items.length > MAX_DOM) {
      const ranked = items.slice().sort((a, b) => dur[b] - dur[a]);
      domItems = ranked.slice(0, MAX_DOM);
      canvasItems = ranked.slice(MAX_DOM);
      if (state.selected >= 0 && !domItems.includes(state.selected) && items.includes(state.selected)) domItems.push(state.selected);
    }
    const frag = document.createDocumentFragment();
    for (let r = r0; r <= r1; r++) {
      const lane = laneAtRow(r);
      if (lane && lane.row0 === r && r > 0) {
        const sep = document.createElement("div");
        sep.className = "lane-sep"; sep.style.top = (r * ROW) + "px";
        frag.append(sep);
      }
    }
    for (const i of domItems) frag.append(spanElement(i, width));
    spanLayer.replaceChildren(frag);
    paintCanvas(canvasItems, width, height, top);
    drawArrows(r0, r1, width);
    drawRuler(width);
    drawLabels(top, height);
    state.drawn = domItems.length; state.painted = canvasItems.length;
  }

  function spanElement(i, width) {
    const el = document.createElement("div");
    const x0 = xOf(start[i]), x1 = xOf(end[i]);
    const left = Math.max(x0, -2), right = Math.min(x1, width + 2);
    const kind = D.kinds[kindOf[i]], name = D.names[nameOf[i]];
    const detail = D.detail[i];
    el.className = "span";
    if (detail && detail.error) el.className += " err";
    if (state.match) el.className += state.match[i] ? " match" : " dim";
    if (i === state.selected) el.className += " sel";
    el.dataset.spanId = idOf[i];
    el.dataset.index = i;
    el.dataset.kind = kind;
    el.style.left = left + "px";
    el.style.top = (rowOf[i] * ROW + 1) + "px";
    el.style.width = Math.max(right - left, 1) + "px";
    el.style.background = kindColor[kindOf[i]];
    el.title = kind + " " + name + " · " + fmtNs(dur[i]);
    if (right - left > 24) el.textContent = name;
    if (detail && detail.wait_ns) {
      const wait = document.createElement("div");
      const w = detail.wait_ns / state.nsPerPx;
      wait.className = "wait";
      wait.style.left = (x0 - w) + "px"; wait.style.width = w + "px";
      wait.style.top = (rowOf[i] * ROW + 1) + "px";
      wait.title = "queue wait " + fmtNs(detail.wait_ns);
      return fragmentOf(wait, el);
    }
    return el;
  }
  function fragmentOf(...nodes) { const f = document.createDocumentFragment(); f.append(...nodes); return f; }

  function paintCanvas(list, width, height, top) {
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio); canvas.height = Math.round(height * ratio);
      canvas.style.width = width + "px"; canvas.style.height = height + "px";
    }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    for (const i of list) {
      const x0 = Math.max(xOf(start[i]), 0), x1 = Math.min(xOf(end[i]), width);
      g.globalAlpha = state.match && !state.match[i] ? 0.18 : 1;
      g.fillStyle = kindColor[kindOf[i]];
      g.fillRect(x0, rowOf[i] * ROW + 1 - top, Math.max(x1 - x0, 1), ROW - 3);
    }
    g.globalAlpha = 1;
  }

  function drawArrows(r0, r1, width) {
    const parts = [];
    let count = 0;
    const links = D.links;
    svg.setAttribute("width", width);
    svg.setAttribute("height", ROWS * ROW);
    for (let j = 0; j < links.length && count < MAX_LINKS; j++) {
      const [from, to, relation] = links[j];
      if (state.hidden[kindOf[from]] || state.hidden[kindOf[to]]) continue;
      const ra = rowOf[from], rb = rowOf[to];
      // Only arrows that end in view: a fan-out of thousands drawn from one
      // visible parent would be a solid block of ink.
      if (rb < r0 || rb > r1) continue;
      const tFrom = Math.min(Math.max(start[to], start[from]), end[from]);
      const xa = xOf(tFrom), xb = xOf(start[to]);
      if (Math.max(xa, xb) < -50 || Math.min(xa, xb) > width + 50) continue;
      const down = rb >= ra;
      const ya = ra * ROW + (down ? ROW - 3 : 2), yb = rb * ROW + (down ? 1 : ROW - 3);
      const xe = xb + 3, ym = (ya + yb) / 2;
      const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
      path.setAttribute("d", "M" + xa.toFixed(1) + "," + ya + " C" + xa.toFixed(1) + "," + ym + " " + xe.toFixed(1) + "," + ym + " " + xe.toFixed(1) + "," + yb);
      path.setAttribute("class", "link rel-" + String(relation).replace(/[^\w-]/g, "_"));
      path.dataset.linkFrom = idOf[from];
      path.dataset.linkTo = idOf[to];
      path.dataset.relation = relation;
      parts.push(path);
      count++;
    }
    arrowLayer.replaceChildren(...parts);
    state.arrows = count;
  }

  function drawRuler(width) {
    const minStep = 90 * state.nsPerPx;
    let step = Math.pow(10, Math.floor(Math.log10(Math.max(minStep, 1e-3))));
    for (const m of [1, 2, 5, 10]) { if (step * m >= minStep) { step *= m; break; } }
    const first = Math.ceil(state.viewStart / step) * step;
    const ticks = [];
    for (let t = first; t < state.viewStart + width * state.nsPerPx; t += step) {
      const tick = document.createElement("div");
      tick.className = "tick"; tick.style.left = xOf(t) + "px"; tick.textContent = fmtNs(t);
      ticks.push(tick);
    }
    ruler.replaceChildren(...ticks);
  }

  function laneAtRow(r) {
    const lanes = D.lanes;
    let lo = 0, hi = lanes.length - 1;
    if (hi < 0) return null;
    while (lo < hi) { const m = (lo + hi + 1) >> 1; if (lanes[m].row0 <= r) lo = m; else hi = m - 1; }
    return lanes[lo];
  }
  function drawLabels(top, height) {
    labelsInner.style.transform = "translateY(" + (-top) + "px)";
    const lanes = D.lanes, out = [];
    let lo = 0, hi = lanes.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (lanes[m].row0 + lanes[m].rows <= top / ROW) lo = m + 1; else hi = m; }
    for (let j = lo; j < lanes.length && lanes[j].row0 * ROW < top + height; j++) {
      const lane = lanes[j], label = document.createElement("div");
      const traceHead = D.traces.length > 1 && (j === 0 || lanes[j - 1].trace !== lane.trace);
      label.className = "lane-label" + (traceHead ? " trace-head" : "");
      label.style.top = (lane.row0 * ROW) + "px";
      label.textContent = (traceHead ? D.traces[lane.trace].id + ": " : "") + lane.name;
      label.title = lane.name + " (" + D.traces[lane.trace].id + ")";
      out.push(label);
    }
    labelsInner.replaceChildren(...out);
  }

  // -- details --------------------------------------------------------------
  function row(table, key, value, cls) {
    const tr = table.insertRow();
    tr.insertCell().textContent = key;
    const cell = tr.insertCell();
    if (value instanceof Node) cell.append(value); else cell.textContent = value;
    if (cls) cell.className = cls;
  }
  function jump(i, text) {
    const a = document.createElement("a");
    a.textContent = text;
    a.addEventListener("click", () => { select(i); reveal(i); });
    return a;
  }
  function show(value) { return typeof value === "string" ? value : JSON.stringify(value); }
  function showDetails(i) {
    details.replaceChildren();
    if (i < 0) return;
    const detail = D.detail[i] || {}, kind = D.kinds[kindOf[i]], name = D.names[nameOf[i]];
    const h = document.createElement("h2");
    h.textContent = kind + " " + name;
    const table = document.createElement("table");
    const trace = D.traces[traceOf[i]];
    row(table, "span", "#" + idOf[i]);
    row(table, "trace", trace.id);
    const p = S.parent[i];
    if (p >= 0) row(table, "parent", jump(p, "#" + idOf[p] + " " + D.names[nameOf[p]]));
    if (detail.relation) row(table, "placed as", "↪ " + detail.relation);
    row(table, "start", "+" + fmtNs(start[i] - trace.start));
    row(table, "duration", fmtNs(dur[i]));
    if (detail.wait_ns) row(table, "queue wait", fmtNs(detail.wait_ns));
    const usage = fmtUsage(D.usage[i]);
    if (usage) row(table, "subtree", usage + ", " + D.usage[i][0] + " LLM calls (linked work counted once)");
    details.append(h, table);
    const meta = detail.meta;
    if (meta && Object.keys(meta).length) {
      const title = document.createElement("h3"); title.textContent = "Metadata";
      const mt = document.createElement("table"); mt.className = "meta";
      for (const key of Object.keys(meta).sort()) {
        row(mt, key, show(meta[key]), key === "error" || (key === "status" && meta[key] === "error") ? "error" : "");
      }
      details.append(title, mt);
    }
    if (detail.events) {
      const title = document.createElement("h3"); title.textContent = "Events";
      const et = document.createElement("table");
      for (const e of detail.events) {
        const attrs = Object.keys(e.attributes || {}).length ? " " + JSON.stringify(e.attributes) : "";
        row(et, "+" + e.offset_ms + " ms", e.name + attrs, /error|exception/i.test(e.name) ? "error" : "");
      }
      details.append(title, et);
    }
    if (detail.links) {
      const title = document.createElement("h3"); title.textContent = "Links";
      const lt = document.createElement("table");
      for (const link of detail.links) {
        const traceIndex = D.traces.findIndex((t) => t.id === link.trace_id);
        const target = byKey.get(traceIndex + ":" + link.span_id);
        const relation = (link.attributes && link.attributes.relation) || "link";
        const label = "#" + link.span_id + (traceIndex === traceOf[i] ? "" : " in " + link.trace_id);
        row(lt, relation, target === undefined ? label : jump(target, label + " " + D.names[nameOf[target]]));
      }
      details.append(title, lt);
    }
  }
  function select(i) {
    state.selected = i;
    showDetails(i);
    render();
  }
  function reveal(i) {
    const width = scroller.clientWidth;
    const x0 = xOf(start[i]), x1 = xOf(end[i]);
    if (x1 < 0 || x0 > width) {
      state.viewStart = start[i] - width * state.nsPerPx * 0.3;
      state.fitted = false;
    }
    const y = rowOf[i] * ROW;
    if (y < scroller.scrollTop || y > scroller.scrollTop + scroller.clientHeight - ROW) {
      scroller.scrollTop = Math.max(0, y - scroller.clientHeight / 3);
    }
    render();
  }
  function zoomTo(i) {
    const width = scroller.clientWidth, span = Math.max(dur[i], 1000);
    state.nsPerPx = (span * 1.2) / width;
    state.viewStart = start[i] - span * 0.1;
    state.fitted = false;
    reveal(i);
  }

  // -- input ----------------------------------------------------------------
  function fit() {
    state.nsPerPx = (maxEnd * 1.02) / Math.max(scroller.clientWidth, 100);
    state.viewStart = -maxEnd * 0.005;
    state.fitted = true;  // kept fitted across window resizes until the user zooms or pans
    render();
  }
  function zoom(factor, atX) {
    const x = atX === undefined ? scroller.clientWidth / 2 : atX;
    const t = state.viewStart + x * state.nsPerPx;
    state.nsPerPx = Math.min(Math.max(state.nsPerPx * factor, 1e-3), (maxEnd * 4) / 100);
    state.viewStart = t - x * state.nsPerPx;
    state.fitted = false;
    render();
  }
  function pan(px) { state.viewStart += px * state.nsPerPx; state.fitted = false; render(); }
  $("zoom-in").addEventListener("click", () => zoom(0.5));
  $("zoom-out").addEventListener("click", () => zoom(2));
  $("zoom-fit").addEventListener("click", fit);
  scroller.addEventListener("scroll", render, { passive: true });
  window.addEventListener("resize", () => (state.fitted ? fit() : render()));
  scroller.addEventListener("wheel", (e) => {
    const x = e.clientX - scroller.getBoundingClientRect().left;
    if (e.ctrlKey || e.metaKey || e.altKey) { e.preventDefault(); zoom(Math.exp(e.deltaY * 0.002), x); }
    else if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) { e.preventDefault(); pan(e.deltaX || e.deltaY); }
  }, { passive: false });
  let drag = null;
  scroller.addEventListener("mousedown", (e) => {
    if (e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY, start: state.viewStart, top: scroller.scrollTop, moved: false };
  });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    drag.moved = true;
    scroller.classList.add("dragging");
    state.viewStart = drag.start - dx * state.nsPerPx;
    state.fitted = false;
    scroller.scrollTop = drag.top - dy;
    render();
  });
  window.addEventListener("mouseup", () => { scroller.classList.remove("dragging"); setTimeout(() => { drag = null; }, 0); });
  function spanAt(e) {
    const el = e.target.closest ? e.target.closest(".span") : null;
    if (el) return Number(el.dataset.index);
    const box = scroller.getBoundingClientRect();
    const r = Math.floor((e.clientY - box.top + scroller.scrollTop) / ROW);
    if (r < 0 || r >= ROWS) return -1;
    const t = state.viewStart + (e.clientX - box.left) * state.nsPerPx, slack = 2 * state.nsPerPx;
    const k = firstEndingAfter(rowStart[r], rowStart[r + 1], t - slack);
    if (k < rowStart[r + 1] && start[byRow[k]] <= t + slack && !state.hidden[kindOf[byRow[k]]]) return byRow[k];
    return -1;
  }
  scroller.addEventListener("click", (e) => { if (drag && drag.moved) return; select(spanAt(e)); });
  scroller.addEventListener("dblclick", (e) => { const i = spanAt(e); if (i >= 0) zoomTo(i); });
  const search = $("search");
  search.addEventListener("input", () => {
    const query = search.value.trim().toLowerCase();
    state.query = query;
    if (!query) { state.match = null; state.matchList = []; $("matches").textContent = ""; render(); return; }
    const nameHit = D.names.map((name) => name.toLowerCase().includes(query));
    const match = new Uint8Array(N), list = [];
    for (let i = 0; i < N; i++) if (nameHit[nameOf[i]]) { match[i] = 1; list.push(i); }
    list.sort((a, b) => start[a] - start[b] || a - b);
    state.match = match; state.matchList = list; state.matchAt = -1;
    $("matches").textContent = list.length + " match" + (list.length === 1 ? "" : "es");
    render();
  });
  search.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !state.matchList.length) return;
    state.matchAt = (state.matchAt + 1) % state.matchList.length;
    const i = state.matchList[state.matchAt];
    select(i); reveal(i);
  });
  window.addEventListener("keydown", (e) => {
    if (e.target === search) return;
    const keys = { w: () => zoom(0.8), s: () => zoom(1.25), a: () => pan(-80), d: () => pan(80),
      f: fit, Escape: () => select(-1), "/": () => { e.preventDefault(); search.focus(); } };
    if (keys[e.key]) keys[e.key]();
  });

  content.style.height = Math.max(ROWS * ROW, 1) + "px";
  fit();
  draw();
  const tDrawn = performance.now();
  // Read by the browser tests and the load benchmark.
  window.harnViewer = { state, render: draw, select, zoomTo, fit,
    timings: { parse_ms: tParsed - t0, layout_ms: tLaidOut - tParsed, first_draw_ms: tDrawn - tLaidOut,
      ready_ms: tDrawn } };
  document.body.dataset.ready = "1";
})();
