// The arena page. A plain ES module, no build step: it plays examples/game
// through Shockwave's browser client, shockwave.js, in MessagePack (the
// protocol is in gameserver's doc). The client reconnects with backoff by
// itself; the page joins again on every connection.
//
// The server is authoritative: the page sends the keys held and draws the
// snapshots it gets, 3 ticks in the past, interpolating between the two
// snapshots around the time drawn, so that movement is smooth whatever the
// jitter of the network.
//
// The debug view (the "debug" box, or ?debug=1 in the URL; remembered in
// localStorage, ?debug=0 turns it off) makes the client start a trace for
// each join and input it sends, and shows the trace ids of the last one
// sent and of the last event received with one, to find in the server's
// traces.
import { connect } from './shockwave.js';

// The input bitmask, by KeyboardEvent.code (the key's place, whatever the
// keyboard layout).
const UP = 1;
const DOWN = 2;
const LEFT = 4;
const RIGHT = 8;
const KEYS = {
  ArrowUp: UP, KeyW: UP,
  ArrowDown: DOWN, KeyS: DOWN,
  ArrowLeft: LEFT, KeyA: LEFT,
  ArrowRight: RIGHT, KeyD: RIGHT,
};
const RESEND_MS = 250; // the held keys go again this often
const DELAY_TICKS = 3; // draw this far behind the newest snapshot (100 ms at 30 Hz)
const KEEP_TICKS = 30; // snapshots kept for the interpolation
const MAX_NAME = 24; // characters

// The players' colours, by colour index c (0..15), bright on the dark arena.
const PALETTE = [
  '#ff5d5d', '#4cd07d', '#ffd84d', '#4c8dff', '#ff9f43', '#b86bff', '#3ee0e0', '#ff66c4',
  '#a8e05f', '#ffb3b3', '#2bb3a3', '#d9b8ff', '#c98a4b', '#f4f1c1', '#e0566b', '#9ef0c8',
];
const COLORS = {
  page: '#0b0f19',
  arena: '#131a2b',
  grid: '#1a2236',
  border: '#4c8dff',
  item: '#ffe9a8',
  ink: '#e6e9f2',
  muted: '#8a93a8',
  panel: 'rgba(11, 15, 25, 0.85)',
  states: { online: '#4cd07d', connecting: '#ffd84d', reconnecting: '#ff5d5d' },
};
const HUD_HEIGHT = 30; // CSS pixels above the arena
const MARGIN = 12; // CSS pixels around the arena

const canvas = document.getElementById('arena');
const ctx = canvas.getContext('2d');
const nameInput = document.getElementById('name');

let sw = null; // the client
let state = 'connecting'; // of the connection: connecting, online, reconnecting
let world = null; // from the last "welcome": {id, m, tr, w, h, sc, pr, ir}
let snaps = []; // recent snapshots, oldest first: {t, p, i, byId}
let offset = null; // ms: when tick 0 would have arrived, in performance.now() time (smoothed)
let frames = 0; // canvas frames drawn

let keys = 0; // held now
let seq = 0; // of the last input sent on this connection
const sent = new Map(); // seq -> when it was sent, until a snapshot acknowledges it
let ping = null; // ms from an input to the snapshot that shows it applied (smoothed)
let debug = initialDebug(); // the debug view is on

// For tests and the curious.
window.game = {
  get connected() { return state === 'online'; },
  get state() { return state; },
  get id() { return world ? world.id : 0; },
  get match() { return world ? world.m : 0; },
  get tick() { return snaps.length ? snaps[snaps.length - 1].t : 0; },
  get frames() { return frames; },
  get players() { return snaps.length ? snaps[snaps.length - 1].p.length : 0; },
  get ping() { return ping; },
  /** Trace ids of the last envelope sent and received with one: {sent, received}. */
  get trace() { return sw ? { ...sw.lastTrace } : { sent: undefined, received: undefined }; },
  /** The own player of the latest snapshot, or null. */
  self() {
    const s = snaps[snaps.length - 1];
    return (s && world && s.byId.get(world.id)) || null;
  },
};

// ------------------------------------------------------------ connection

function start() {
  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  sw = connect(url.href, { codec: 'msgpack', trace: debug });
  sw.on('trace', showTrace);
  state = 'connecting';
  sw.on('connect', () => {
    state = 'online';
    seq = 0; // the sequence numbers start over with each connection
    sent.clear();
    sw.emit('join', { n: playerName() });
    if (keys) sendInput();
  });
  sw.on('disconnect', () => {
    state = 'reconnecting';
  });
  sw.on('welcome', (d) => {
    world = { id: d.id, m: d.m, tr: d.tr, w: d.w, h: d.h, sc: d.sc, pr: d.pr, ir: d.ir };
    snaps = []; // perhaps another match: its ticks are not ours
    offset = null;
    if (d.s) addSnapshot(d.s);
  });
  sw.on('snap', addSnapshot);
  sw.on('error', (err) => console.warn('game:', err.code, err.message));
}

function tickMs() {
  return 1000 / world.tr;
}

// addSnapshot keeps a snapshot, updates the tick clock and measures the
// ping when it acknowledges inputs.
function addSnapshot(s) {
  if (!world) return; // the welcome comes first
  const snap = { t: Number(s.t), p: s.p || [], i: s.i || [] };
  snap.byId = new Map(snap.p.map((pl) => [pl.id, pl]));
  const last = snaps[snaps.length - 1];
  if (last && snap.t <= last.t) return;
  snaps.push(snap);
  while (snap.t - snaps[0].t > KEEP_TICKS) snaps.shift();

  // The tick clock: the local time of tick 0, were every snapshot as
  // late as the average one. A jump (the tab slept, the server stalled)
  // resets it.
  const now = performance.now();
  const est = now - snap.t * tickMs();
  if (offset === null || Math.abs(est - offset) > 1000) offset = est;
  else offset += (est - offset) * 0.05;

  const me = snap.byId.get(world.id);
  if (me) acknowledge(me.a, now);
}

// acknowledge forgets the inputs up to seq a, which the server applied,
// and takes the newest one's round trip as a sample of the ping.
function acknowledge(a, now) {
  let sample = null;
  for (const [s, at] of sent) { // in the order sent
    if (s > a) break;
    sample = now - at;
    sent.delete(s);
  }
  if (sample !== null) ping = ping === null ? sample : ping + (sample - ping) * 0.2;
}

// ----------------------------------------------------------------- input

function sendInput() {
  if (state !== 'online') return; // a join must precede inputs: none queue while offline
  seq++;
  sent.set(seq, performance.now());
  if (sent.size > 100) sent.delete(sent.keys().next().value); // dropped by the server
  sw.emit('input', { s: seq, k: keys });
}

function setKeys(k) {
  if (k === keys) return;
  keys = k;
  sendInput();
}

addEventListener('keydown', (e) => {
  const bit = KEYS[e.code];
  if (!bit || e.target === nameInput || e.ctrlKey || e.metaKey || e.altKey) return;
  e.preventDefault(); // no scrolling with the arrows
  setKeys(keys | bit);
});
addEventListener('keyup', (e) => {
  const bit = KEYS[e.code];
  if (bit) setKeys(keys & ~bit);
});
addEventListener('blur', () => setKeys(0)); // the keyups go elsewhere now
setInterval(() => {
  if (keys) sendInput();
}, RESEND_MS);

// ----------------------------------------------------------------- debug

function initialDebug() {
  const q = new URLSearchParams(location.search).get('debug');
  if (q !== null) {
    const on = !['0', 'false', 'off'].includes(q);
    saveDebug(on);
    return on;
  }
  try {
    return localStorage.getItem('game.debug') === '1';
  } catch {
    return false;
  }
}

function saveDebug(on) {
  try {
    localStorage.setItem('game.debug', on ? '1' : '0');
  } catch {
    // not remembered, but used
  }
}

function renderDebug() {
  document.getElementById('debug').hidden = !debug;
  document.getElementById('debug-toggle').checked = debug;
}

// showTrace shows a trace id the client sent or received, in the debug
// view.
function showTrace({ direction, event, traceId, traceparent }) {
  if (!debug || !traceId) return;
  const code = document.getElementById(`trace-${direction}`);
  code.textContent = traceId;
  code.dataset.traceparent = traceparent;
  document.getElementById(`trace-${direction}-event`).textContent = event;
}

document.getElementById('debug-toggle').addEventListener('change', (e) => {
  debug = e.target.checked;
  saveDebug(debug);
  if (sw) sw.options.trace = debug;
  renderDebug();
});
renderDebug();

// ------------------------------------------------------------------ name

function playerName() {
  return [...nameInput.value.trim()].slice(0, MAX_NAME).join('');
}

try {
  nameInput.value = localStorage.getItem('game.name') || '';
} catch {
  // no storage here: no remembered name
}

// A new name takes a new connection: the server reads it at the join.
document.getElementById('name-form').addEventListener('submit', (e) => {
  e.preventDefault();
  nameInput.blur();
  try {
    localStorage.setItem('game.name', playerName());
  } catch {
    // not remembered, but used
  }
  sw.close();
  world = null;
  snaps = [];
  start();
});

// -------------------------------------------------------------- drawing

// view returns the players and items to draw at local time now: those of
// DELAY_TICKS before the newest snapshot, the players' positions
// interpolated between the two snapshots around that tick.
function view(now) {
  const newest = snaps[snaps.length - 1];
  // The tick to draw; at most one tick past the newest.
  const rt = Math.min((now - offset) / tickMs() - DELAY_TICKS, newest.t + 1);
  let i = snaps.length - 1;
  while (i > 0 && snaps[i].t > rt) i--;
  const a = snaps[i];
  const b = snaps[i + 1];
  if (rt <= a.t) return a; // before the oldest kept: as it was
  if (!b) {
    // Past the newest: on along the velocities, for less than a tick.
    const f = rt - a.t;
    return { p: a.p.map((pl) => ({ ...pl, x: pl.x + pl.vx * f, y: pl.y + pl.vy * f })), i: a.i };
  }
  const f = (rt - a.t) / (b.t - a.t);
  const p = b.p.map((pl) => {
    const from = a.byId.get(pl.id);
    if (!from) return pl; // just joined: where it is
    return { ...pl, x: from.x + (pl.x - from.x) * f, y: from.y + (pl.y - from.y) * f };
  });
  return { p, i: a.i };
}

function frame(now) {
  requestAnimationFrame(frame);
  // The canvas has the window's device pixels; we draw in CSS pixels.
  const dpr = devicePixelRatio || 1;
  const W = canvas.clientWidth;
  const H = canvas.clientHeight;
  if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = COLORS.page;
  ctx.fillRect(0, 0, W, H);
  if (world && snaps.length) drawWorld(now, W, H);
  else drawBanner(W, H, state === 'online' ? 'Joining…' : 'Connecting…');
  drawHud();
  frames++;
}

function drawWorld(now, W, H) {
  // The arena, as large as fits below the HUD, in its own proportions.
  const { w, h, sc } = world;
  const scale = Math.min((W - 2 * MARGIN) / w, (H - HUD_HEIGHT - 2 * MARGIN) / h);
  if (scale <= 0) return;
  const ox = (W - w * scale) / 2;
  const oy = HUD_HEIGHT + MARGIN + (H - HUD_HEIGHT - 2 * MARGIN - h * scale) / 2;
  const sx = (x) => ox + (x / sc) * scale; // sub-units to canvas
  const sy = (y) => oy + (y / sc) * scale;

  ctx.fillStyle = COLORS.arena;
  ctx.fillRect(ox, oy, w * scale, h * scale);
  ctx.strokeStyle = COLORS.grid;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let x = 50; x < w; x += 50) {
    ctx.moveTo(ox + x * scale, oy);
    ctx.lineTo(ox + x * scale, oy + h * scale);
  }
  for (let y = 50; y < h; y += 50) {
    ctx.moveTo(ox, oy + y * scale);
    ctx.lineTo(ox + w * scale, oy + y * scale);
  }
  ctx.stroke();
  ctx.strokeStyle = COLORS.border;
  ctx.lineWidth = 2;
  ctx.strokeRect(ox - 1, oy - 1, w * scale + 2, h * scale + 2);

  const v = view(now);

  // Items: small glowing dots.
  ctx.save();
  ctx.fillStyle = COLORS.item;
  ctx.shadowColor = COLORS.item;
  ctx.shadowBlur = 10;
  for (const it of v.i) {
    ctx.beginPath();
    ctx.arc(sx(it.x), sy(it.y), Math.max(2, world.ir * scale), 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.restore();

  // Players, the own one outlined, with names above.
  const r = Math.max(4, world.pr * scale);
  ctx.font = '600 12px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'bottom';
  for (const pl of v.p) {
    const x = sx(pl.x);
    const y = sy(pl.y);
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fillStyle = PALETTE[pl.c & 15];
    ctx.fill();
    ctx.lineWidth = pl.id === world.id ? 3 : 1.5;
    ctx.strokeStyle = pl.id === world.id ? '#ffffff' : 'rgba(0, 0, 0, 0.45)';
    ctx.stroke();
    ctx.fillStyle = pl.id === world.id ? '#ffffff' : COLORS.ink;
    ctx.fillText(label(pl), x, y - r - 4);
  }

  drawScoreboard(snaps[snaps.length - 1].p, ox + w * scale, oy);
}

function label(pl) {
  return pl.n || `player ${pl.id}`;
}

// drawScoreboard draws the best ten players, and the own one if it is not
// among them, in the top right corner of the arena at (right, top).
function drawScoreboard(players, right, top) {
  const sorted = [...players].sort((p, q) => q.sc - p.sc || p.id - q.id);
  const rows = sorted.slice(0, 10).map((pl, k) => [k + 1, pl]);
  const mine = sorted.findIndex((pl) => pl.id === world.id);
  if (mine >= 10) rows.push([mine + 1, sorted[mine]]);
  const lh = 18;
  const width = 180;
  const x = right - width - 8;
  const y = top + 8;
  ctx.fillStyle = COLORS.panel;
  ctx.fillRect(x, y, width, 26 + rows.length * lh);
  ctx.textBaseline = 'middle';
  ctx.font = '600 12px system-ui, sans-serif';
  ctx.textAlign = 'left';
  ctx.fillStyle = COLORS.muted;
  ctx.fillText('SCORE', x + 10, y + 13);
  rows.forEach(([rank, pl], k) => {
    const ry = y + 26 + k * lh + lh / 2 - 2;
    ctx.fillStyle = PALETTE[pl.c & 15];
    ctx.beginPath();
    ctx.arc(x + 32, ry, 5, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = pl.id === world.id ? '#ffffff' : COLORS.ink;
    ctx.font = `${pl.id === world.id ? 700 : 400} 12px system-ui, sans-serif`;
    ctx.textAlign = 'left';
    ctx.fillText(String(rank), x + 10, ry);
    ctx.fillText(label(pl).slice(0, 18), x + 44, ry);
    ctx.textAlign = 'right';
    ctx.fillText(String(pl.sc), x + width - 10, ry);
  });
}

// drawHud writes the state of the game and of the connection on one line.
function drawHud() {
  const g = window.game;
  const parts = [];
  if (world) parts.push(`match ${world.m}`, `${g.players} players`, `tick ${g.tick}`);
  parts.push(ping === null ? 'ping –' : `ping ${Math.round(ping)} ms`);
  const y = HUD_HEIGHT / 2 + 2;
  ctx.font = '12px ui-monospace, SFMono-Regular, Menlo, monospace';
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'left';
  ctx.fillStyle = COLORS.states[state];
  ctx.beginPath();
  ctx.arc(MARGIN + 5, y, 5, 0, 2 * Math.PI);
  ctx.fill();
  ctx.fillText(state, MARGIN + 16, y);
  ctx.fillStyle = COLORS.muted;
  ctx.fillText(parts.join(' · '), MARGIN + 16 + ctx.measureText(state).width + 14, y);
}

function drawBanner(W, H, text) {
  ctx.fillStyle = COLORS.muted;
  ctx.font = '16px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, W / 2, H / 2);
}

start();
requestAnimationFrame(frame);
