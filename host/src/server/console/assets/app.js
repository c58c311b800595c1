// The Sluice web console: a client of the /v1 API, in plain JavaScript.
//
// Rules this file keeps (docs/server.md, "Console"):
// - The token lives in sessionStorage and travels only as an
//   `Authorization: Bearer` header; never in a URL, a cookie or the DOM.
// - Everything the server sends (names, event values, dead-letter reasons,
//   log lines) is written with textContent or as an attribute value through
//   `el()`, never parsed as HTML: plugin names, events and reasons come from
//   whoever feeds the pipeline.
// - No inline script or style: the Content-Security-Policy forbids them.

const TOKEN_KEY = 'sluice.token';
const POLL_MS = 2000;
const MAX_LOG_LINES = 500;
const MAX_TAP_EVENTS = 100;
const SVG = 'http://www.w3.org/2000/svg';

const view = document.getElementById('view');
let timers = [];
let generation = 0;
/** Aborts the live tap's request when the view changes. */
let tapAbort = null;

// ---- small helpers ---------------------------------------------------------

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

/** An SVG element, the same way. */
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      e.addEventListener(k.slice(2), v);
    } else {
      e.setAttribute(k, String(v));
    }
  }
}

function append(e, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function clear(e) {
  while (e.firstChild) e.firstChild.remove();
}

function fmt(n) {
  if (n === undefined || n === null) return '–';
  return Number(n).toLocaleString('en-US');
}

function rate(r) {
  if (r === undefined || r === null || !Number.isFinite(r)) return '–';
  return `${r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString('en-US')}/s`;
}

function bytes(n) {
  if (!n) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function when(ms) {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–';
}

function stateBadge(state) {
  return el('span', { class: `state state-${state}`, 'data-state': state }, state);
}

/** Runs `f` now and every POLL_MS until the view changes. */
function poll(f) {
  const mine = generation;
  const tick = async () => {
    if (mine !== generation) return;
    try { await f(); } catch (e) { if (!(e instanceof SignedOut)) console.error(e); }
  };
  tick();
  timers.push(setInterval(tick, POLL_MS));
}

// ---- the API ---------------------------------------------------------------

class SignedOut extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** {status, ok, data} of an API call with the session's token. */
async function api(method, path, body, tok = token()) {
  const headers = { Authorization: `Bearer ${tok}` };
  if (body !== undefined) headers['Content-Type'] = 'application/yaml';
  const r = await fetch(path, {
    method, headers, body, cache: 'no-store', credentials: 'omit', redirect: 'error',
  });
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  if (r.status === 401 && tok === token()) {
    signOut('The server no longer accepts this token; sign in again.');
    throw new SignedOut();
  }
  return { status: r.status, ok: r.ok, data };
}

function errorText(res) {
  return (res.data && typeof res.data.error === 'string') ? res.data.error : `HTTP ${res.status}`;
}

/** Per-name counters at the last poll, to turn totals into rates. */
class Rates {
  constructor() { this.last = new Map(); }
  /** Rates of `counts` (name -> number) since the last call for `key`. */
  update(key, counts) {
    const now = performance.now();
    const prev = this.last.get(key);
    this.last.set(key, { t: now, counts });
    const out = {};
    for (const [k, v] of Object.entries(counts)) {
      if (!prev || prev.counts[k] === undefined || now <= prev.t) { out[k] = null; continue; }
      // A restarted run starts its counters again from 0.
      out[k] = v < prev.counts[k] ? null : ((v - prev.counts[k]) * 1000) / (now - prev.t);
    }
    return out;
  }
}

// ---- session ---------------------------------------------------------------

let loginMessage = '';

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  loginMessage = message || '';
  location.hash = '#/login';
  route();
}

document.getElementById('logout').addEventListener('click', () => signOut(''));

function showLogin() {
  document.getElementById('top').hidden = true;
  const input = el('input', {
    type: 'password', id: 'token', name: 'token', autocomplete: 'off',
    placeholder: 'sluice_…', required: true,
  });
  const error = el('p', { class: 'error', id: 'login-error', role: 'alert' });
  error.hidden = !loginMessage;
  error.textContent = loginMessage;
  const form = el('form', { class: 'panel', id: 'login' },
    el('h1', {}, 'Sign in to Sluice'),
    el('label', { for: 'token' }, 'Your tenant token'),
    input, error,
    el('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tok = input.value.trim();
    const res = await api('GET', '/v1/whoami', undefined, tok);
    let message = '';
    if (res.status === 401) message = 'That token was not accepted.';
    else if (!res.ok) message = errorText(res);
    else if (res.data.role !== 'tenant') {
      message = "This is the operator's token; the console is for a tenant's token.";
    }
    if (message) {
      error.textContent = message;
      error.hidden = false;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, tok);
    loginMessage = '';
    location.hash = '#/pipelines';
  });
  view.append(el('div', { class: 'login' }, form));
  input.focus();
}

async function showChrome() {
  const top = document.getElementById('top');
  top.hidden = false;
  const section = location.hash.split('/')[1] || 'pipelines';
  for (const a of top.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === section);
  }
  const who = document.getElementById('who');
  if (!who.textContent) {
    const res = await api('GET', '/v1/whoami');
    if (res.ok) who.textContent = `${res.data.tenant} · ${res.data.scope}`;
  }
}

// ---- pipelines list --------------------------------------------------------

function showPipelines(flash) {
  const body = el('tbody');
  const table = el('table', { id: 'pipelines' },
    el('thead', {}, el('tr', {},
      el('th', {}, 'Pipeline'), el('th', {}, 'State'),
      el('th', { class: 'num' }, 'In'), el('th', { class: 'num' }, 'In/s'),
      el('th', { class: 'num' }, 'Out'), el('th', { class: 'num' }, 'Out/s'),
      el('th', { class: 'num' }, 'Dead letters'), el('th', {}, 'Last checkpoint'))),
    body);
  const empty = el('p', { class: 'muted', id: 'no-pipelines', hidden: true },
    'No pipelines yet. ', el('a', { href: '#/deploy' }, 'Deploy one.'));
  const error = el('p', { class: 'error', hidden: true });
  view.append(el('h1', {}, 'Pipelines'));
  if (flash) view.append(el('p', { class: 'note', id: 'flash' }, flash));
  view.append(error, table, empty);
  const rates = new Rates();
  poll(async () => {
    const res = await api('GET', '/v1/pipelines');
    if (!res.ok) { error.textContent = errorText(res); error.hidden = false; return; }
    error.hidden = true;
    const list = res.data.pipelines;
    clear(body);
    empty.hidden = list.length > 0;
    for (const p of list) {
      const st = p.status;
      const r = rates.update(p.name, { in: st.events_in, out: st.events_out });
      const href = `#/pipelines/${encodeURIComponent(p.name)}`;
      body.append(el('tr', { 'data-pipeline': p.name },
        el('td', {}, el('a', { href }, p.name)),
        el('td', {}, stateBadge(st.state)),
        el('td', { class: 'num' }, fmt(st.events_in)),
        el('td', { class: 'num', 'data-rate': 'in' }, rate(r.in)),
        el('td', { class: 'num' }, fmt(st.events_out)),
        el('td', { class: 'num', 'data-rate': 'out' }, rate(r.out)),
        el('td', { class: 'num' }, fmt(st.dead_letters)),
        el('td', {}, p.last_checkpoint === null ? '–' : `#${p.last_checkpoint}`)));
    }
  });
}

// ---- one pipeline ----------------------------------------------------------

/** Columns of the graph: a node's longest distance from a node without inputs. */
function layers(graph) {
  const inputs = new Map(graph.nodes.map((n) => [n.name, []]));
  for (const e of graph.edges) inputs.get(e.to).push(e.from);
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (name) => {
    if (depth.has(name)) return depth.get(name);
    if (visiting.has(name)) return 0; // a cycle: the server refuses them, but do not hang
    visiting.add(name);
    const d = Math.max(-1, ...inputs.get(name).map(depthOf)) + 1;
    visiting.delete(name);
    depth.set(name, d);
    return d;
  };
  graph.nodes.forEach((n) => depthOf(n.name));
  // Sinks in the last column, whatever feeds them.
  const last = Math.max(0, ...[...depth.values()]);
  for (const n of graph.nodes) if (n.role === 'sink') depth.set(n.name, Math.max(last, 1));
  return depth;
}

const NODE_W = 170;
const NODE_H = 58;
const GAP_X = 70;
const GAP_Y = 22;

/** The DAG as an SVG; `figures(name)` gives a node's second and third lines. */
function drawGraph(graph) {
  const depth = layers(graph);
  const columns = [];
  for (const n of graph.nodes) {
    const d = depth.get(n.name);
    (columns[d] = columns[d] || []).push(n);
  }
  const rows = Math.max(1, ...columns.map((c) => (c ? c.length : 0)));
  const width = Math.max(1, columns.length) * (NODE_W + GAP_X) - GAP_X + 20;
  const height = rows * (NODE_H + GAP_Y) - GAP_Y + 20;
  const at = new Map();
  columns.forEach((col, x) => (col || []).forEach((n, y) => {
    const offset = ((rows - col.length) * (NODE_H + GAP_Y)) / 2;
    at.set(n.name, { x: 10 + x * (NODE_W + GAP_X), y: 10 + offset + y * (NODE_H + GAP_Y) });
  }));
  const root = svg('svg', {
    class: 'dag', id: 'dag', viewBox: `0 0 ${width} ${height}`,
    width, height, role: 'img', 'aria-label': 'pipeline graph',
  });
  root.append(svg('defs', {}, svg('marker', {
    id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: 'auto-start-reverse',
  }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }))));
  for (const e of graph.edges) {
    const a = at.get(e.from);
    const b = at.get(e.to);
    const x1 = a.x + NODE_W; const y1 = a.y + NODE_H / 2;
    const x2 = b.x; const y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    root.append(svg('path', {
      class: 'edge', 'data-from': e.from, 'data-to': e.to,
      d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`, 'marker-end': 'url(#arrow)',
    }));
  }
  const labels = new Map();
  for (const n of graph.nodes) {
    const p = at.get(n.name);
    const figure = svg('text', { class: 'figure', x: p.x + 10, y: p.y + 46 }, '');
    const name = n.name.length > 22 ? `${n.name.slice(0, 21)}…` : n.name;
    const kind = n.kind.length > 26 ? `${n.kind.slice(0, 25)}…` : n.kind;
    root.append(svg('g', { class: `node ${n.role}`, 'data-node': n.name, 'data-role': n.role },
      svg('title', {}, `${n.role} ${n.name} (${n.kind})`),
      svg('rect', { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 6 }),
      svg('text', { class: 'name', x: p.x + 10, y: p.y + 18 }, name),
      svg('text', { class: 'figure', x: p.x + 10, y: p.y + 32 }, `${n.role} · ${kind}`),
      figure));
    labels.set(n.name, figure);
  }
  return { root, labels };
}

const CHART_W = 540;
const CHART_H = 150;
const PAD = { left: 56, right: 12, top: 12, bottom: 24 };

/** A line chart of `series` ({key, cls, label}) over `samples`, as an SVG. */
function drawChart(id, title, samples, series, unit) {
  const root = svg('svg', {
    class: 'chart', id, viewBox: `0 0 ${CHART_W} ${CHART_H}`, width: CHART_W, height: CHART_H,
    role: 'img', 'aria-label': title,
  });
  const plotW = CHART_W - PAD.left - PAD.right;
  const plotH = CHART_H - PAD.top - PAD.bottom;
  root.append(svg('rect', { class: 'plot', x: PAD.left, y: PAD.top, width: plotW, height: plotH }));
  const values = samples.flatMap((s) => series.map((x) => s[x.key])).filter((v) => typeof v === 'number');
  if (samples.length < 2 || !values.length) {
    const why = samples.length < 2 ? 'No samples yet' : 'Not measured for this pipeline';
    root.append(svg('text', { class: 'empty', x: PAD.left + 10, y: PAD.top + plotH / 2 }, why));
    return root;
  }
  const t0 = samples[0].t_ms;
  const t1 = samples[samples.length - 1].t_ms;
  const top = Math.max(...values) || 1;
  const x = (t) => PAD.left + ((t - t0) / Math.max(1, t1 - t0)) * plotW;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const hhmm = (t) => new Date(t).toISOString().slice(11, 16);
  root.append(
    svg('text', { class: 'axis', x: PAD.left - 6, y: PAD.top + 10, 'text-anchor': 'end' }, `${fmt(Math.round(top))}${unit}`),
    svg('text', { class: 'axis', x: PAD.left - 6, y: PAD.top + plotH, 'text-anchor': 'end' }, `0${unit}`),
    svg('text', { class: 'axis', x: PAD.left, y: CHART_H - 6 }, hhmm(t0)),
    svg('text', { class: 'axis', x: PAD.left + plotW, y: CHART_H - 6, 'text-anchor': 'end' }, hhmm(t1)));
  series.forEach((sr, i) => {
    // A gap where a value is missing (the first sample, a restarted run).
    let d = '';
    let pen = 'M';
    for (const smp of samples) {
      const v = smp[sr.key];
      if (typeof v !== 'number') { pen = 'M'; continue; }
      d += `${pen} ${x(smp.t_ms).toFixed(1)} ${y(v).toFixed(1)} `;
      pen = 'L';
    }
    if (d) root.append(svg('path', { class: `series ${sr.cls}`, 'data-series': sr.key, d: d.trim() }));
    root.append(svg('text', { class: `legend ${sr.cls}`, x: PAD.left + plotW / 2 - 30 + i * 50, y: CHART_H - 6 }, `— ${sr.label}`));
  });
  return root;
}

function showPipeline(name) {
  const path = `/v1/pipelines/${encodeURIComponent(name)}`;
  const state = el('span');
  const error = el('p', { class: 'error', hidden: true });
  const actions = el('div', { class: 'toolbar' });
  for (const [verb, label] of [['start', 'Start'], ['pause', 'Pause'], ['stop', 'Stop']]) {
    actions.append(el('button', {
      type: 'button', 'data-action': verb,
      onclick: async () => {
        const res = await api('POST', `${path}/${verb}`);
        error.hidden = res.ok;
        error.textContent = res.ok ? '' : errorText(res);
      },
    }, label));
  }
  const graphBox = el('div', { id: 'graph' });
  const figures = el('tbody');
  const logs = el('div', { class: 'logs mono', id: 'logs' });
  const charts = el('div', { class: 'charts', id: 'charts' });
  const tap = liveTap(path);
  view.append(
    el('p', {}, el('a', { href: '#/pipelines' }, '← Pipelines')),
    el('h1', {}, el('span', { id: 'pipeline-name' }, name), ' ', state),
    error, actions, graphBox,
    el('h2', {}, 'Components'),
    el('table', { id: 'components' },
      el('thead', {}, el('tr', {},
        el('th', {}, 'Role'), el('th', {}, 'Name'),
        el('th', { class: 'num' }, 'In'), el('th', { class: 'num' }, 'In/s'),
        el('th', { class: 'num' }, 'Out'), el('th', { class: 'num' }, 'Out/s'),
        el('th', { class: 'num' }, 'Filtered'), el('th', { class: 'num' }, 'Dead letters'),
        el('th', { class: 'num' }, 'Restarts'), el('th', { class: 'num' }, 'CPU ms'),
        el('th', { class: 'num' }, 'Memory'), el('th', { class: 'num' }, 'Lag'))),
      figures),
    el('h2', {}, 'Last hour'), charts,
    el('h2', {}, 'Live tap'), tap.root,
    el('h2', {}, 'Logs'), logs,
    el('h2', {}, 'Dead letters'), deadLetters(path));

  let labels = new Map();
  api('GET', `${path}/graph`).then((res) => {
    if (!res.ok) { graphBox.append(el('p', { class: 'error' }, errorText(res))); return; }
    const g = drawGraph(res.data);
    labels = g.labels;
    tap.components(res.data.nodes);
    graphBox.append(g.root);
    if (res.data.truncated) graphBox.append(el('p', { class: 'muted' }, 'Only the first components are drawn.'));
  }).catch(() => {});

  const rates = new Rates();
  poll(async () => {
    const res = await api('GET', `${path}/status`);
    if (!res.ok) { error.textContent = errorText(res); error.hidden = false; return; }
    const st = res.data.status;
    clear(state);
    state.append(stateBadge(st.state));
    if (st.error) { error.textContent = st.error; error.hidden = false; }
    clear(figures);
    for (const c of st.components) {
      const r = rates.update(`${c.role}/${c.name}`, { in: c.events_in, out: c.events_out });
      figures.append(el('tr', { 'data-component': c.name, 'data-role': c.role },
        el('td', {}, c.role), el('td', {}, c.name),
        el('td', { class: 'num' }, fmt(c.events_in)),
        el('td', { class: 'num', 'data-rate': 'in' }, c.role === 'source' ? '' : rate(r.in)),
        el('td', { class: 'num' }, fmt(c.events_out)),
        el('td', { class: 'num', 'data-rate': 'out' }, rate(r.out)),
        el('td', { class: 'num' }, fmt(c.filtered)),
        el('td', { class: 'num' }, fmt(c.dead_letters)),
        el('td', { class: 'num' }, fmt(c.restarts)),
        el('td', { class: 'num' }, fmt(c.cpu_ms)),
        el('td', { class: 'num' }, bytes(c.memory_bytes)),
        el('td', { class: 'num' }, c.lag ? `${fmt(c.lag.value)} ${c.lag.unit}` : '–')));
      const label = labels.get(c.name);
      if (label) {
        const through = c.role === 'sink' ? r.in ?? r.out : r.out;
        label.textContent = `${fmt(c.role === 'sink' ? c.events_out : c.events_out)} out · ${rate(through)}`;
      }
    }
  });

  poll(async () => {
    const res = await api('GET', `${path}/history`);
    if (!res.ok) return;
    const samples = res.data.samples;
    const lagUnit = (samples.find((x) => x.lag_unit) || {}).lag_unit;
    clear(charts);
    charts.append(
      el('div', {}, el('h3', {}, 'Throughput, events/s'),
        drawChart('chart-throughput', 'throughput', samples, [
          { key: 'in_per_s', cls: 'in', label: 'in' },
          { key: 'out_per_s', cls: 'out', label: 'out' },
        ], '/s')),
      el('div', {}, el('h3', {}, `Lag${lagUnit ? `, ${lagUnit}` : ''}`),
        drawChart('chart-lag', 'lag', samples, [{ key: 'lag', cls: 'lag', label: 'lag' }], '')));
  });

  let since = 0;
  poll(async () => {
    const res = await api('GET', `${path}/logs?since=${since}&limit=200`);
    if (!res.ok) return;
    for (const line of res.data.lines) {
      logs.append(el('div', { class: `lvl-${line.level}` },
        `${when(line.time_ms)} ${line.level} ${line.message}`));
    }
    while (logs.childElementCount > MAX_LOG_LINES) logs.firstElementChild.remove();
    if (res.data.lines.length) logs.scrollTop = logs.scrollHeight;
    since = res.data.next;
  });
}

/**
 * The live tap: the last MAX_TAP_EVENTS events leaving one source or stage,
 * as text. EventSource cannot send the token's header, so the stream is a
 * fetch() read chunk by chunk; a stream the server ends at its time limit
 * is opened again until Stop.
 */
function liveTap(path) {
  const select = el('select', { name: 'component', id: 'tap-component', 'aria-label': 'component' });
  const filter = el('input', {
    name: 'filter', id: 'tap-filter', placeholder: 'filter, e.g. id % 2 = 0', 'aria-label': 'filter',
  });
  const start = el('button', { type: 'submit', id: 'tap-start' }, 'Start');
  const stop = el('button', { type: 'button', id: 'tap-stop', disabled: true }, 'Stop');
  const note = el('p', { class: 'muted', id: 'tap-note' }, 'Pick a source or stage and start.');
  const events = el('div', { class: 'logs mono', id: 'tap-events' });
  const form = el('form', { class: 'filters', id: 'tap-form' }, select, filter, start, stop);
  const mine = generation;
  let wanted = false;
  let lost = 0;

  const running = (on) => {
    start.disabled = on;
    stop.disabled = !on;
    select.disabled = on;
    filter.disabled = on;
  };

  const show = (frame) => {
    let kind = '';
    let data = '';
    for (const line of frame.split('\n')) {
      if (line.startsWith('event:')) kind = line.slice(6).trim();
      else if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
    }
    if (!data) return null;
    let v;
    try { v = JSON.parse(data); } catch { return null; }
    if (kind === '') {
      events.append(el('div', { class: 'tap-event', 'data-key': v.key ?? '' },
        `${when(v.timestamp_ms)} key=${v.key ?? '–'} ${JSON.stringify(v.value)}`));
      while (events.childElementCount > MAX_TAP_EVENTS) events.firstElementChild.remove();
      events.scrollTop = events.scrollHeight;
    } else if (kind === 'open') {
      note.textContent = `Tapping ${v.component}: at most ${v.rate} events/s.`;
    } else if (kind === 'lost') {
      lost = v.lost;
      note.textContent = `${fmt(lost)} events lost: this page fell behind.`;
    } else if (kind === 'end') {
      return v.reason;
    }
    return null;
  };

  const once = async () => {
    const q = new URLSearchParams({ component: select.value });
    if (filter.value.trim()) q.set('filter', filter.value.trim());
    const controller = new AbortController();
    tapAbort = controller;
    const r = await fetch(`${path}/tap?${q}`, {
      headers: { Authorization: `Bearer ${token()}` },
      cache: 'no-store', credentials: 'omit', redirect: 'error', signal: controller.signal,
    });
    if (!r.ok) {
      let data = null;
      try { data = await r.json(); } catch { data = null; }
      if (r.status === 401) { signOut('The server no longer accepts this token; sign in again.'); }
      throw new Error(errorText({ status: r.status, data }));
    }
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return 'closed';
      buf += value;
      let at;
      while ((at = buf.indexOf('\n\n')) >= 0) {
        const reason = show(buf.slice(0, at));
        buf = buf.slice(at + 2);
        if (reason) return reason;
      }
    }
  };

  const run = async () => {
    running(true);
    while (wanted && mine === generation) {
      let reason;
      try {
        reason = await once();
      } catch (e) {
        if (wanted && mine === generation) note.textContent = e.name === 'AbortError' ? 'Stopped.' : String(e.message || e);
        break;
      }
      if (reason === 'stopped') { note.textContent = 'The pipeline stopped.'; break; }
      // The server's time limit, or a connection it closed: open again.
      await new Promise((ok) => { setTimeout(ok, 300); });
    }
    wanted = false;
    if (mine === generation) running(false);
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (wanted || !select.value) return;
    wanted = true;
    clear(events);
    lost = 0;
    note.textContent = 'Connecting…';
    run();
  });
  stop.addEventListener('click', () => {
    wanted = false;
    if (tapAbort) tapAbort.abort();
    note.textContent = 'Stopped.';
  });

  return {
    root: el('div', { id: 'tap' }, form, note, events),
    /** Fills the choice with the graph's sources and stages. */
    components(nodes) {
      for (const n of nodes || []) {
        if (n.role === 'source' || n.role === 'stage') {
          select.append(el('option', { value: n.name }, `${n.role} ${n.name}`));
        }
      }
    },
  };
}

/** The dead-letter browser: the API's selection, paged by `next`. */
function deadLetters(path) {
  const inputs = {};
  const fields = [['kind', 'kind'], ['stage', 'stage'], ['plugin', 'plugin'], ['filter', 'filter, e.g. value.n > 3']];
  const form = el('form', { class: 'filters', id: 'dl-filters' });
  for (const [name, placeholder] of fields) {
    inputs[name] = el('input', { name, placeholder, 'aria-label': name });
    form.append(inputs[name]);
  }
  form.append(el('button', { type: 'submit' }, 'Show'));
  const body = el('tbody');
  const error = el('p', { class: 'error', hidden: true, id: 'dl-error' });
  const more = el('button', { type: 'button', hidden: true, id: 'dl-more' }, 'More');
  const detail = el('div', { class: 'detail', id: 'dl-detail' });
  const summary = el('p', { class: 'muted', id: 'dl-summary' });
  let next = 0;
  let shown = 0;
  const selection = () => {
    const q = new URLSearchParams();
    for (const [name] of fields) {
      const v = inputs[name].value.trim();
      if (v) q.set(name, v);
    }
    return q;
  };
  const load = async (after) => {
    const q = selection();
    q.set('after', String(after));
    q.set('limit', '50');
    const res = await api('GET', `${path}/dead-letters?${q}`);
    if (!res.ok) { error.textContent = errorText(res); error.hidden = false; return; }
    error.hidden = true;
    if (after === 0) { clear(body); clear(detail); shown = 0; }
    for (const l of res.data.letters) {
      shown += 1;
      const row = el('tr', { class: 'clickable', 'data-letter': l.id },
        el('td', { class: 'mono' }, l.id),
        el('td', {}, l.kind),
        el('td', {}, l.stage),
        el('td', { class: 'reason' }, l.reason),
        el('td', {}, l.replayed || ''),
        el('td', {}, when(l.time_ms)));
      row.addEventListener('click', () => {
        for (const r of body.querySelectorAll('tr.selected')) r.classList.remove('selected');
        row.classList.add('selected');
        clear(detail);
        detail.append(
          el('h2', {}, 'Dead letter ', el('span', { class: 'mono' }, l.id)),
          el('p', { class: 'reason', id: 'dl-reason' }, l.reason),
          el('pre', { class: 'panel', id: 'dl-json' }, JSON.stringify(l, null, 2)));
      });
      body.append(row);
    }
    next = res.data.next;
    more.hidden = res.data.complete;
    summary.textContent = `${shown} shown${res.data.complete ? '' : ', more after this page'}`;
  };
  // Replay the same selection (the pipeline must be stopped or finished);
  // the server sends each letter at most once, however often this is pressed.
  const replay = el('button', { type: 'button', id: 'dl-replay' }, 'Replay selection');
  const replayed = el('p', { class: 'note', id: 'dl-replayed', hidden: true });
  replay.addEventListener('click', async () => {
    replay.disabled = true;
    try {
      const res = await api('POST', `${path}/dead-letters/replay?${selection()}`);
      if (!res.ok) { error.textContent = errorText(res); error.hidden = false; replayed.hidden = true; return; }
      error.hidden = true;
      const r = res.data;
      const outcomes = Object.entries(r.outcomes).map(([k, v]) => `${v} ${k}`);
      if (r.already_replayed) outcomes.push(`${r.already_replayed} already replayed before`);
      const skipped = Object.values(r.not_replayable).reduce((a, b) => a + b, 0);
      if (skipped) outcomes.push(`${skipped} not replayable`);
      replayed.textContent = r.run
        ? `Replay run ${r.run}: ${outcomes.join(', ')}.`
        : `Nothing to replay${outcomes.length ? ` (${outcomes.join(', ')})` : ''}.`;
      replayed.hidden = false;
      await load(0);
    } finally {
      replay.disabled = false;
    }
  });
  // Purging removes letters for good: a second button confirms it.
  const purge = el('button', { type: 'button', id: 'dl-purge' }, 'Purge replayed…');
  const confirmPurge = el('button', { type: 'button', class: 'danger', id: 'dl-purge-confirm', hidden: true },
    'Yes, remove the letters replayed before');
  purge.addEventListener('click', () => { confirmPurge.hidden = !confirmPurge.hidden; });
  confirmPurge.addEventListener('click', async () => {
    confirmPurge.hidden = true;
    const res = await api('POST', `${path}/dead-letters/purge?replayed=true`);
    if (!res.ok) { error.textContent = errorText(res); error.hidden = false; replayed.hidden = true; return; }
    error.hidden = true;
    replayed.textContent = `Purged ${res.data.removed} dead letter(s); ${res.data.kept} kept.`;
    replayed.hidden = false;
    await load(0);
  });
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(0).catch(() => {}); });
  more.addEventListener('click', () => load(next).catch(() => {}));
  load(0).catch(() => {});
  return el('div', {}, form, el('div', { class: 'toolbar' }, replay, purge, confirmPurge), replayed, error, summary,
    el('table', { id: 'dead-letters' },
      el('thead', {}, el('tr', {},
        el('th', {}, 'Id'), el('th', {}, 'Kind'), el('th', {}, 'Stage'),
        el('th', {}, 'Reason'), el('th', {}, 'Replayed'), el('th', {}, 'Time'))),
      body),
    more, detail);
}

// ---- plugins ---------------------------------------------------------------

async function showPlugins() {
  view.append(el('h1', {}, 'Plugins'));
  const [plugins, pipelines] = await Promise.all([api('GET', '/v1/plugins'), api('GET', '/v1/pipelines')]);
  if (!plugins.ok || !pipelines.ok) {
    view.append(el('p', { class: 'error' }, errorText(plugins.ok ? pipelines : plugins)));
    return;
  }
  const body = el('tbody');
  for (const p of plugins.data.plugins) {
    const users = pipelines.data.pipelines.filter((q) => (q.plugins || []).includes(p.sha256));
    const usedBy = el('td', { class: 'used-by' });
    users.forEach((u, i) => {
      if (i) usedBy.append(', ');
      usedBy.append(el('a', { href: `#/pipelines/${encodeURIComponent(u.name)}` }, u.name));
    });
    if (!users.length) usedBy.append(el('span', { class: 'muted' }, 'none'));
    body.append(el('tr', { 'data-plugin': p.name },
      el('td', {}, p.name),
      el('td', { class: 'mono', title: p.sha256 }, `sha256:${p.sha256.slice(0, 12)}`),
      el('td', {}, p.world),
      el('td', {}, p.label),
      el('td', { class: 'num' }, bytes(p.size)),
      el('td', {}, when(p.created_ms)),
      usedBy));
  }
  view.append(el('table', { id: 'plugins' },
    el('thead', {}, el('tr', {},
      el('th', {}, 'Name'), el('th', {}, 'Version'), el('th', {}, 'World'), el('th', {}, 'Label'),
      el('th', { class: 'num' }, 'Size'), el('th', {}, 'Uploaded'), el('th', {}, 'Used by'))),
    body));
  if (!plugins.data.plugins.length) view.append(el('p', { class: 'muted' }, 'No plugins uploaded.'));
}

// ---- deploy ----------------------------------------------------------------

let draft = '';

function showDeploy() {
  const text = el('textarea', { id: 'yaml', spellcheck: 'false', 'aria-label': 'pipeline file' });
  text.value = draft;
  text.addEventListener('input', () => { draft = text.value; });
  const outcome = el('div', { id: 'outcome' });
  const show = (res, yaml) => {
    clear(outcome);
    if (res.ok) return;
    outcome.append(el('p', { class: 'error', id: 'deploy-error' }, errorText(res)));
    const problems = (res.data && Array.isArray(res.data.problems)) ? res.data.problems : [];
    if (!problems.length) return;
    const list = el('ul', { class: 'diagnostics', id: 'diagnostics' });
    for (const d of problems) {
      list.append(el('li', { 'data-line': d.line },
        d.line ? `line ${d.line}, column ${d.col}: ` : '', d.field ? `${d.field}: ` : '', d.message));
    }
    // The file with each problem under its line.
    const byLine = new Map();
    for (const d of problems) {
      if (!byLine.has(d.line)) byLine.set(d.line, []);
      byLine.get(d.line).push(d);
    }
    const source = el('ol', { class: 'source-view panel', id: 'source-view' });
    const whole = byLine.get(0) || [];
    for (const d of whole) source.append(el('li', { class: 'problem', 'data-problem-line': 0 }, el('span', { class: 'n' }, '!'), el('span', { class: 't' }, `${d.field ? `${d.field}: ` : ''}${d.message}`)));
    yaml.split('\n').forEach((line, i) => {
      const n = i + 1;
      const here = byLine.get(n) || [];
      source.append(el('li', { class: here.length ? 'bad' : '', 'data-line': n },
        el('span', { class: 'n' }, n), el('span', { class: 't' }, line)));
      for (const d of here) {
        source.append(el('li', { class: 'problem', 'data-problem-line': n },
          el('span', { class: 'n' }, '↑'),
          el('span', { class: 't' }, `${' '.repeat(Math.max(0, d.col - 1))}${d.field ? `${d.field}: ` : ''}${d.message}`)));
      }
    });
    outcome.append(list, source);
  };
  const validate = el('button', { type: 'button', id: 'validate' }, 'Validate');
  const deploy = el('button', { type: 'button', class: 'primary', id: 'deploy' }, 'Deploy');
  validate.addEventListener('click', async () => {
    const yaml = text.value;
    const res = await api('POST', '/v1/validate', yaml);
    show(res, yaml);
    if (res.ok) {
      const d = res.data;
      outcome.append(el('p', { class: 'note', id: 'valid' },
        `Valid: ${d.name} with ${d.sources} source(s), ${d.stages} stage(s), ${d.sinks} sink(s).`));
    }
  });
  deploy.addEventListener('click', async () => {
    const yaml = text.value;
    const res = await api('POST', '/v1/pipelines', yaml);
    show(res, yaml);
    if (res.ok) {
      draft = '';
      routeTo('#/pipelines', `Deployed ${res.data.name} (${res.data.update ? res.data.update.kind : 'ok'}).`);
    }
  });
  view.append(el('h1', {}, 'Deploy a pipeline'),
    el('p', { class: 'muted' }, 'A pipeline file as `sluice run` takes it, with a `name:`. Deploying a name that exists updates that pipeline.'),
    text, el('div', { class: 'toolbar' }, validate, deploy), outcome);
}

// ---- routing ---------------------------------------------------------------

let flash = '';

function routeTo(hash, message) {
  flash = message || '';
  if (location.hash === hash) route(); else location.hash = hash;
}

function route() {
  generation += 1;
  if (tapAbort) { tapAbort.abort(); tapAbort = null; }
  timers.forEach(clearInterval);
  timers = [];
  clear(view);
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  if (!token()) {
    document.getElementById('who').textContent = '';
    showLogin();
    return;
  }
  showChrome().catch(() => {});
  const message = flash;
  flash = '';
  switch (parts[0]) {
    case 'pipelines':
      if (parts[1]) showPipeline(decodeURIComponent(parts.slice(1).join('/')));
      else showPipelines(message);
      break;
    case 'plugins': showPlugins().catch(() => {}); break;
    case 'deploy': showDeploy(); break;
    default: location.hash = '#/pipelines';
  }
}

window.addEventListener('hashchange', route);
route();
