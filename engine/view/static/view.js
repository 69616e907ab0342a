// raylign view: a run directory's page. Plain JS, no build step, nothing fetched but this server's JSON.
// State lives in S; the URL's query string holds the user's choices (stage, step, filters) so a link (or a
// test) opens the same view: cs (curves stage), rs (rollouts stage), kind, step, status, rmin, rmax, lmin, lmax,
// q (text search), group (side-by-side), poll (milliseconds between refreshes).
"use strict";

const Q = new URLSearchParams(location.search);
const S = {
  run: null, runKey: "", metrics: [], gen: null, curveStage: Q.get("cs") || "", extra: new Set(),
  ro: { stage: Q.get("rs") || "", kind: Q.get("kind") || "train", step: Q.has("step") ? +Q.get("step") : null,
        follow: !Q.has("step"), blocks: [], gen: null, records: [], loaded: null,
        group: Q.has("group") ? +Q.get("group") : null },
  f: { status: Q.get("status") || "", rmin: Q.get("rmin") || "", rmax: Q.get("rmax") || "",
       lmin: Q.get("lmin") || "", lmax: Q.get("lmax") || "", q: Q.get("q") || "" },
  polls: 0, pollMs: Math.max(100, +(Q.get("poll") || 2000)), curvesKey: "",
};
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------------------------------------ helpers
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function fmt(v) {
  if (v === null || v === undefined || v === "") return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (a >= 1e5 || (a > 0 && a < 1e-3)) return v.toExponential(2);
  return String(+v.toPrecision(4));
}
function cut(s, n) { s = s || ""; return s.length > n ? s.slice(0, n) + "…" : s; }
async function get(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}
function setQuery() {
  const q = new URLSearchParams();
  if (S.curveStage) q.set("cs", S.curveStage);
  if (S.ro.stage) q.set("rs", S.ro.stage);
  if (S.ro.kind !== "train") q.set("kind", S.ro.kind);
  if (!S.ro.follow && S.ro.step !== null) q.set("step", S.ro.step);
  for (const [k, v] of Object.entries(S.f)) if (v !== "") q.set(k, v);
  if (S.ro.group !== null) q.set("group", S.ro.group);
  if (Q.has("poll")) q.set("poll", Q.get("poll"));
  const s = q.toString();
  history.replaceState(null, "", s ? `?${s}` : location.pathname);
}
function ago(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

// ------------------------------------------------------------------------------------------------ charts
// series: [{name, pts: [[x, y], ...], color, right}] (right: its own y axis on the right)
function chart({ title, series, xLabel = "step", w = 340, h = 200, data = {} }) {
  const right = series.some((s) => s.right);
  const m = { l: 54, r: right ? 54 : 14, t: 24, b: 30 };
  const tick = (v) => (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? String(+v.toPrecision(3)) : fmt(v));
  const all = series.flatMap((s) => s.pts);
  const box = el("div", { class: "chart" });
  const root = svg("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}` });
  for (const [k, v] of Object.entries(data)) root.dataset[k] = v;
  root.append(svg("text", { x: 6, y: 15, class: "title" }, title));
  box.append(root);
  if (!all.length) { root.append(svg("text", { x: w / 2, y: h / 2, class: "tick", "text-anchor": "middle" }, "no data yet")); return box; }
  const span = (vals) => {
    let lo = Math.min(...vals), hi = Math.max(...vals);
    if (lo === hi) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
    const pad = (hi - lo) * 0.06; return [lo - pad, hi + pad];
  };
  const [x0, x1] = (() => { const xs = all.map((p) => p[0]); let a = Math.min(...xs), b = Math.max(...xs); if (a === b) { a -= 1; b += 1; } return [a, b]; })();
  const X = (x) => m.l + ((x - x0) / (x1 - x0)) * (w - m.l - m.r);
  const scales = {};
  for (const side of ["left", "right"]) {
    const pts = series.filter((s) => (side === "right") === !!s.right).flatMap((s) => s.pts);
    if (pts.length) { const [y0, y1] = span(pts.map((p) => p[1])); scales[side] = { y0, y1, Y: (y) => h - m.b - ((y - y0) / (y1 - y0)) * (h - m.t - m.b) }; }
  }
  const L = scales.left || scales.right;
  for (let i = 0; i <= 4; i++) {  // grid and left ticks
    const v = L.y0 + ((L.y1 - L.y0) * i) / 4, y = L.Y(v);
    root.append(svg("line", { x1: m.l, x2: w - m.r, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: m.l - 4, y: y + 3, class: "tick", "text-anchor": "end" }, tick(v)));
    if (scales.right && scales.left) {
      const R = scales.right, rv = R.y0 + ((R.y1 - R.y0) * i) / 4;
      root.append(svg("text", { x: w - m.r + 4, y: R.Y(rv) + 3, class: "tick" }, tick(rv)));
    }
  }
  root.append(svg("line", { x1: m.l, x2: w - m.r, y1: h - m.b, y2: h - m.b, class: "axis" }));
  root.append(svg("line", { x1: m.l, x2: m.l, y1: m.t, y2: h - m.b, class: "axis" }));
  const whole = all.every((p) => Number.isInteger(p[0]));  // steps: integer ticks
  for (const xv of [...new Set([x0, whole ? Math.round((x0 + x1) / 2) : (x0 + x1) / 2, x1])]) {
    root.append(svg("text", { x: X(xv), y: h - m.b + 12, class: "tick", "text-anchor": "middle" }, fmt(+xv.toPrecision(4))));
  }
  root.append(svg("text", { x: (m.l + w - m.r) / 2, y: h - 4, class: "tick", "text-anchor": "middle" }, xLabel));
  series.forEach((s, i) => {
    const sc = s.right ? scales.right : scales.left || scales.right;
    const color = s.color || COLORS[i % COLORS.length];
    const line = svg("polyline", { fill: "none", stroke: color, "stroke-width": 1.6,
      points: s.pts.map((p) => `${X(p[0]).toFixed(1)},${sc.Y(p[1]).toFixed(1)}`).join(" ") });
    line.dataset.series = s.name;
    root.append(line);
    if (s.pts.length <= 60) for (const p of s.pts) {
      const c = svg("circle", { cx: X(p[0]), cy: sc.Y(p[1]), r: 2.4, fill: color });
      c.append(svg("title", {}, `${xLabel} ${fmt(p[0])}: ${s.name} = ${fmt(p[1])}`));
      root.append(c);
    }
    if (series.length > 1) {
      root.append(svg("rect", { x: m.l + 6 + i * 110, y: m.t + 2, width: 8, height: 8, fill: color }));
      root.append(svg("text", { x: m.l + 17 + i * 110, y: m.t + 10, class: "tick" }, s.name));
    }
  });
  // readout: the value nearest the pointer
  const guide = svg("line", { y1: m.t, y2: h - m.b, stroke: "#999", "stroke-dasharray": "2,2", visibility: "hidden" });
  const readout = svg("text", { x: w - m.r, y: 15, class: "readout", "text-anchor": "end" });
  const last = series[0].pts[series[0].pts.length - 1];
  readout.textContent = `last ${fmt(last[1])}`;
  root.append(guide, readout);
  root.addEventListener("mousemove", (ev) => {
    const r = root.getBoundingClientRect(), x = ev.clientX - r.left;
    const parts = [];
    let gx = null;
    for (const s of series) {
      let best = null;
      for (const p of s.pts) if (best === null || Math.abs(X(p[0]) - x) < Math.abs(X(best[0]) - x)) best = p;
      if (best) { parts.push(`${s.name} ${fmt(best[1])}`); gx = gx ?? best[0]; }
    }
    guide.setAttribute("x1", X(gx)); guide.setAttribute("x2", X(gx)); guide.setAttribute("visibility", "visible");
    readout.textContent = `${xLabel} ${fmt(gx)}: ${parts.join(", ")}`;
  });
  root.addEventListener("mouseleave", () => { guide.setAttribute("visibility", "hidden"); readout.textContent = `last ${fmt(last[1])}`; });
  return box;
}

// ------------------------------------------------------------------------------------------------ pipeline
function renderRun(run) {
  $("run-name").textContent = run.name;
  const age = run.now - run.updated;
  $("run-meta").textContent = `${run.run_dir} · ${run.finished ? "finished" : "last write " + ago(age)}`;
  const live = $("live");
  live.className = "live " + (run.finished ? "done" : "on");
  live.textContent = run.finished ? "finished" : "live";
  const key = JSON.stringify(run.stages);
  if (key === S.runKey) return;
  S.runKey = key;
  S.run = run;
  const box = $("pipeline");
  box.replaceChildren();
  run.stages.forEach((st, i) => {
    if (i) box.append(el("div", { class: "arrow", text: "→" }));
    const nums = Object.entries(st.metrics || {}).filter(([, v]) => typeof v === "number");
    const rows = nums.map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { class: "v", text: fmt(v) })));
    const progress = st.status !== "done" && st.last_step !== null
      ? el("div", { class: "plugin", text: `step ${st.last_step}${st.steps ? " / " + st.steps : ""}` }) : null;
    box.append(el("div", { class: "stage", "data-stage": st.name, "data-status": st.status },
      el("div", { class: "head" }, el("span", { class: "name", text: st.name }),
        el("span", { class: `badge ${st.status}`, text: st.status })),
      st.plugin !== st.name ? el("div", { class: "plugin", text: st.plugin }) : null,
      progress,
      rows.length ? el("div", { class: "more" }, el("table", {}, rows)) : null));
  });
  renderProbes(run);
  renderRolloutStages(run);
}

function renderProbes(run) {
  const stages = run.stages.filter((s) => s.probes && s.probes.length);
  const box = $("probes");
  if (!stages.length) { box.replaceChildren(el("div", { class: "empty", text: "No probe answers yet (written when a stage ends)." })); return; }
  const prompts = [];
  for (const s of stages) for (const p of s.probes) if (!prompts.includes(p.prompt)) prompts.push(p.prompt);
  const head = el("tr", {}, el("th", { text: "probe" }), stages.map((s) => el("th", { text: s.name })));
  const body = prompts.map((p) => el("tr", {}, el("th", { text: p }), stages.map((s) => {
    const a = s.probes.find((x) => x.prompt === p);
    return el("td", { text: a ? (a.answer.trim() || "(empty)") + (a.finished === false ? " …" : "") : "" });
  })));
  box.replaceChildren(el("table", { class: "probes" }, el("thead", {}, head), el("tbody", {}, body)));
}

// ------------------------------------------------------------------------------------------------ curves
const DEFAULT_METRIC = /loss|reward|pass|accuracy|score/;
function stageRows(stage) { return S.metrics.filter((r) => r.stage === stage); }
function numericKeys(rows) {
  const keys = new Set();
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (typeof v === "number" && k !== "step") keys.add(k);
  return [...keys].sort();
}
function isDefault(k) {
  return (k === "kl" || DEFAULT_METRIC.test(k)) && !k.endsWith("_before") && !/^(eval_)?reward\//.test(k)
    && !/^gold_(wins|losses|ties)$/.test(k);
}

function renderCurves(force) {
  const stages = [];
  const order = S.run ? S.run.stages.map((s) => s.name) : [];
  for (const r of S.metrics) if (!stages.includes(r.stage)) stages.push(r.stage);
  stages.sort((a, b) => (order.indexOf(a) + 1 || 1e9) - (order.indexOf(b) + 1 || 1e9));
  const sel = $("curve-stage");
  if (sel.options.length !== stages.length || [...sel.options].some((o, i) => o.value !== stages[i])) {
    sel.replaceChildren(...stages.map((s) => el("option", { value: s, text: s })));
  }
  if (!stages.includes(S.curveStage)) {
    const running = S.run && S.run.stages.find((s) => s.status === "running" && stages.includes(s.name));
    S.curveStage = running ? running.name : stages[stages.length - 1] || "";
  }
  sel.value = S.curveStage;
  const rows = stageRows(S.curveStage);
  const keys = numericKeys(rows);
  const key = `${S.curveStage}|${rows.length}|${[...S.extra].join(",")}|${keys.length}`;
  if (!force && key === S.curvesKey) return;
  S.curvesKey = key;
  const choices = $("metric-choices");
  choices.replaceChildren(...keys.filter((k) => !isDefault(k)).map((k) => el("label", {},
    el("input", { type: "checkbox", checked: S.extra.has(k), onchange: (e) => { e.target.checked ? S.extra.add(k) : S.extra.delete(k); renderCurves(true); } }), " " + k)));
  const shown = keys.filter((k) => isDefault(k) || S.extra.has(k));
  const done = S.run && (S.run.stages.find((s) => s.name === S.curveStage) || {}).metrics || {};
  const charts = shown.map((k) => {
    const pts = rows.filter((r) => typeof r[k] === "number").map((r) => [r.step, r[k]]);
    if (typeof done[`${k}_before`] === "number" && !pts.some((p) => p[0] === 0)) pts.unshift([0, done[`${k}_before`]]);
    const lastVal = pts.length ? pts[pts.length - 1][1] : "";
    return chart({ title: `${S.curveStage}: ${k}`, series: [{ name: k, pts }],
      data: { stage: S.curveStage, metric: k, points: pts.length, last: lastVal } });
  });
  $("curves").replaceChildren(...(charts.length ? charts : [el("div", { class: "empty", text: "No metrics logged yet." })]));
  renderPPO(stages);
}

function renderPPO(stages) {
  const charts = [];
  for (const stage of stages) {
    const rows = stageRows(stage).filter((r) => typeof r.eval_rm_score === "number" && typeof r.kl === "number");
    if (!rows.length) continue;
    const series = [{ name: "reward model", pts: rows.map((r) => [r.kl, r.eval_rm_score]), color: COLORS[0] }];
    const gold = rows.filter((r) => typeof r.eval_gold_score === "number");
    if (gold.length) series.push({ name: "gold judge", pts: gold.map((r) => [r.kl, r.eval_gold_score]), color: COLORS[1], right: true });
    charts.push(chart({ title: `${stage}: held-out scores against KL`, series, xLabel: "KL to the reference", w: 460, h: 240,
      data: { stage, metric: "scores_vs_kl", points: rows.length, last: rows[rows.length - 1].eval_rm_score } }));
  }
  $("ppo").replaceChildren(...charts);
}

// ------------------------------------------------------------------------------------------------ rollouts
function renderRolloutStages(run) {
  const stages = run.stages.filter((s) => s.rollouts).map((s) => s.name);
  $("rollouts-empty").hidden = stages.length > 0;
  $("rollouts-ui").hidden = stages.length === 0;
  const sel = $("ro-stage");
  if ([...sel.options].map((o) => o.value).join() !== stages.join()) sel.replaceChildren(...stages.map((s) => el("option", { value: s, text: s })));
  if (!stages.includes(S.ro.stage)) {
    const running = run.stages.find((s) => s.status === "running" && s.rollouts);
    S.ro.stage = running ? running.name : stages[stages.length - 1] || "";
  }
  sel.value = S.ro.stage;
}

async function refreshRollouts(forceRecords) {
  if (!S.ro.stage) return;
  const index = await get(`/api/rollouts/${encodeURIComponent(S.ro.stage)}/index`);
  const reset = index.generation !== S.ro.gen;
  S.ro.gen = index.generation;
  S.ro.blocks = index.blocks;
  const blocks = S.ro.blocks.filter((b) => b.kind === S.ro.kind);
  const steps = blocks.map((b) => b.step);
  if (S.ro.follow || (S.ro.step !== null && !steps.includes(S.ro.step)) || S.ro.step === null) {
    S.ro.step = steps.length ? steps[steps.length - 1] : null;
  }
  const sel = $("ro-step");
  const labels = blocks.map((b) => `${b.step}  (reward ${fmt(b.reward_mean)}, v${b.weights_version})`);
  if ([...sel.options].map((o) => o.textContent).join("|") !== labels.join("|")) {
    sel.replaceChildren(...blocks.map((b, i) => el("option", { value: b.step, text: labels[i] })));
  }
  if (S.ro.step !== null) sel.value = S.ro.step;
  renderStrip(blocks);
  const want = `${S.ro.stage}|${S.ro.kind}|${S.ro.step}|${S.ro.gen}`;
  if (S.ro.step === null) { S.ro.records = []; S.ro.loaded = want; renderTable(); return; }
  if (forceRecords || reset || S.ro.loaded !== want) {
    const data = await get(`/api/rollouts/${encodeURIComponent(S.ro.stage)}?step=${S.ro.step}&kind=${S.ro.kind}`);
    S.ro.records = data.records;
    S.ro.loaded = want;
    renderTable();
    await renderGroup();
  }
}

function renderStrip(blocks) {
  const strip = $("step-strip");
  const rs = blocks.map((b) => b.reward_mean);
  const lo = Math.min(...rs, 0), hi = Math.max(...rs, lo + 1e-9);
  strip.replaceChildren(...blocks.map((b) => el("div", {
    class: b.step === S.ro.step ? "sel" : "", title: `step ${b.step}: reward ${fmt(b.reward_mean)}, length ${fmt(b.length_mean)}`,
    style: `height:${4 + (24 * (b.reward_mean - lo)) / (hi - lo)}px`, onclick: () => pickStep(b.step) })));
}

function pickStep(step) { S.ro.step = step; S.ro.follow = false; $("ro-follow").checked = false; S.ro.group = null; setQuery(); refreshRollouts(true); }

function matches(r) {
  const f = S.f;
  if (f.status && r.status !== f.status) return false;
  if (f.rmin !== "" && !(r.reward >= +f.rmin)) return false;
  if (f.rmax !== "" && !(r.reward <= +f.rmax)) return false;
  if (f.lmin !== "" && !(r.length >= +f.lmin)) return false;
  if (f.lmax !== "" && !(r.length <= +f.lmax)) return false;
  if (f.q) {
    const hay = `${r.prompt}\n${r.completion}\n${JSON.stringify(r.details || {})}\n${r.error || ""}\n${JSON.stringify(r.task || {})}`.toLowerCase();
    if (!hay.includes(f.q.toLowerCase())) return false;
  }
  return true;
}

function detailsText(r) {
  const parts = [];
  if (r.error) parts.push(`error: ${r.error}`);
  if (r.details) parts.push(JSON.stringify(r.details));
  if (r.task && r.task.answer !== undefined) parts.push(`reference: ${JSON.stringify(r.task.answer)}`);
  if (typeof r.gold_score === "number") parts.push(`gold ${fmt(r.gold_score)}`);
  if (typeof r.kl === "number") parts.push(`kl ${fmt(r.kl)}`);
  if (r.kept === false) parts.push("left out of the loss");
  return parts.join("\n");
}

function renderTable() {
  const shown = S.ro.records.filter(matches);
  const total = S.ro.records.length;
  $("rollout-count").textContent = S.ro.step === null ? `no ${S.ro.kind} rollouts yet`
    : `${shown.length} of ${total} samples · step ${S.ro.step} · ${S.ro.kind}`;
  $("rollout-count").dataset.shown = shown.length;
  $("rollout-count").dataset.total = total;
  const body = shown.map((r) => el("tr", {
      class: r.group === S.ro.group ? "sel" : "", "data-group": r.group, "data-sample": r.sample,
      "data-reward": r.reward, "data-status": r.status, "data-length": r.length,
      onclick: () => { S.ro.group = r.group; setQuery(); renderTable(); renderGroup(); } },
    el("td", { class: "num", text: r.group }), el("td", { class: "num", text: r.sample }),
    el("td", { class: "num reward", text: fmt(r.reward) }),
    el("td", { class: "small", text: r.terms ? Object.entries(r.terms).map(([k, v]) => `${k} ${fmt(v)}`).join("\n") : "" }),
    el("td", { class: `st-${r.status}`, text: r.status }),
    el("td", { class: "num", text: fmt(r.advantage) }),
    el("td", { class: "num" }, String(r.length), r.truncated ? el("span", { class: "trunc", text: " cut" }) : null),
    el("td", { class: "text small", text: cut(r.prompt, 160) }),
    el("td", { class: "text", text: cut(r.completion, 600) }),
    el("td", { class: "small", text: cut(detailsText(r), 300) })));
  $("rollouts").tBodies[0].replaceChildren(...body);
}

async function renderGroup() {
  const box = $("group");
  if (S.ro.group === null) { box.hidden = true; return; }
  let recs, title;
  if (S.ro.kind === "eval") {
    const data = await get(`/api/rollouts/${encodeURIComponent(S.ro.stage)}/prompt?kind=eval&group=${S.ro.group}`);
    recs = data.records; title = `held-out prompt ${S.ro.group}: its greedy answer at each eval`;
  } else {
    recs = S.ro.records.filter((r) => r.group === S.ro.group).sort((a, b) => a.sample - b.sample);
    title = `group ${S.ro.group} of step ${S.ro.step}: its ${recs.length} samples side by side`;
  }
  if (!recs.length) { box.hidden = true; return; }
  const best = Math.max(...recs.map((r) => r.reward));
  const cols = recs.map((r) => el("div", { class: "col" + (r.reward === best && recs.length > 1 ? " best" : ""), "data-sample": r.sample, "data-step": r.step },
    el("div", { class: "meta", text: S.ro.kind === "eval" ? `step ${r.step} · weights v${r.weights_version}` : `sample ${r.sample}` }),
    el("div", {}, el("b", { text: `reward ${fmt(r.reward)}` }), r.advantage !== null ? ` · adv ${fmt(r.advantage)}` : "",
      typeof r.gold_score === "number" ? ` · gold ${fmt(r.gold_score)}` : ""),
    el("div", { class: `st-${r.status}`, text: `${r.status} · ${r.length} tokens${r.truncated ? " (cut)" : ""}` }),
    el("div", { class: "text", text: r.completion || "(empty)" }),
    el("div", { class: "meta", text: detailsText(r) })));
  box.replaceChildren(el("h3", { text: title }), el("div", { class: "prompt", text: recs[0].prompt }), el("div", { class: "cols" }, cols));
  box.hidden = false;
}

// ------------------------------------------------------------------------------------------------ wiring
function wire() {
  $("curve-stage").addEventListener("change", (e) => { S.curveStage = e.target.value; setQuery(); renderCurves(true); });
  $("ro-stage").addEventListener("change", (e) => { S.ro.stage = e.target.value; S.ro.follow = true; $("ro-follow").checked = true; S.ro.group = null; setQuery(); refreshRollouts(true); });
  $("ro-kind").addEventListener("change", (e) => { S.ro.kind = e.target.value; S.ro.follow = true; $("ro-follow").checked = true; S.ro.group = null; setQuery(); refreshRollouts(true); });
  $("ro-step").addEventListener("change", (e) => pickStep(+e.target.value));
  const move = (d) => { const steps = S.ro.blocks.filter((b) => b.kind === S.ro.kind).map((b) => b.step); const i = steps.indexOf(S.ro.step) + d; if (i >= 0 && i < steps.length) pickStep(steps[i]); };
  $("ro-prev").addEventListener("click", () => move(-1));
  $("ro-next").addEventListener("click", () => move(1));
  $("ro-follow").addEventListener("change", (e) => { S.ro.follow = e.target.checked; setQuery(); refreshRollouts(true); });
  $("ro-kind").value = S.ro.kind;
  $("ro-follow").checked = S.ro.follow;
  for (const k of Object.keys(S.f)) {
    const input = $(`f-${k}`);
    input.value = S.f[k];
    input.addEventListener("input", () => { S.f[k] = input.value.trim(); setQuery(); renderTable(); });
  }
  $("f-clear").addEventListener("click", () => { for (const k of Object.keys(S.f)) { S.f[k] = ""; $(`f-${k}`).value = ""; } setQuery(); renderTable(); });
}

async function poll() {
  try {
    renderRun(await get("/api/run"));
    const m = await get(`/api/metrics?since=${S.metrics.length}&generation=${S.gen === null ? "" : S.gen}`);
    S.metrics = m.reset ? m.rows : S.metrics.concat(m.rows);
    S.gen = m.generation;
    renderCurves(false);
    await refreshRollouts(false);
    S.polls += 1;
    document.body.dataset.polls = S.polls;
    document.body.dataset.metricRows = S.metrics.length;
    document.body.dataset.ready = "1";
  } catch (err) {
    $("live").className = "live";
    $("live").textContent = "disconnected";
    console.error(err);
  }
  setTimeout(poll, S.pollMs);
}

wire();
poll();
