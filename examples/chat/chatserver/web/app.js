// The chat page. A plain ES module, no build step: it speaks the protocol of
// examples/chat/chatserver (see its doc.go) through Shockwave's browser
// client, shockwave.js, which reconnects by itself (at once when the browser
// is back online, else with backoff) and joins the room again from the last
// message the page got. The server's reply says whether it could serve that
// position: if so ("recovered"), the messages missed meanwhile follow and
// the page keeps what it shows; if not, or on a first join, the page shows
// the room afresh from the reply and the room's last messages, which
// follow it. Either way the reply says who is in the room, and the page
// keeps that up to date from room.presence events. A user whose connection
// drops is not gone for the others until the server's grace period is
// over, so a page that comes back quickly is never seen to leave.
//
// The user signs in with a name (POST login): the server answers with an
// HttpOnly cookie that the browser sends with every request, the
// WebSocket's included, and the name in it is the name the chat shows.
// Before every connection the client asks GET me: a 401 there (the cookie
// expired, or was refused) stops it with "unauthorized", and the page asks
// the user to sign in again; the server closes an expired session with
// 3000, which ends the same way.
//
// Every string from the network goes into the page as text (textContent),
// never as HTML.
//
// The debug view (the "Debug" box under People, or ?debug=1 in the URL;
// remembered in localStorage, ?debug=0 turns it off) makes the client
// start a trace for each message the user sends (shockwave.js's trace
// option) and shows the trace ids: next to each message, the one it
// arrived with, and in a panel under the messages the last ones sent and
// received. A user whose message did not arrive can give its trace id; a
// server that traces has its "receive" span, and the room's "publish" and
// "deliver" spans, in that trace.
import { connect } from './shockwave.js';

const $ = (id) => document.getElementById(id);

const me = {
  nick: '', // the signed-in name, from the server
  room: hashRoom() || 'lobby',
};

let sw = null; // the client, once signed in
let joined = null; // the room shown, from the last join's reply
let maxLength = 2000; // characters, from the join's reply
let whisperTo = null; // the member private messages go to, or null
let lastTyping = 0; // when chat.typing was last sent
const members = new Set();
const typing = new Map(); // nick -> timer
let debug = initialDebug(); // the debug view is on
const MAX_TRACES = 8; // rows of the debug panel
const RECENT = 100; // the last messages of a room the page asks for as it shows it (the server keeps 100 by default)

// ------------------------------------------------------------ connection

function start() {
  if (sw) {
    enterRoom(me.room);
    return;
  }
  const url = new URL('ws', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  // The cookie goes with the handshake by itself; this tells "signed out"
  // (null: the client stops) from "server down" (a throw: it retries).
  sw = connect(url.href, {
    trace: debug,
    beforeConnect: async () => {
      const r = await fetch('me', { cache: 'no-store' });
      if (r.status === 401) return null;
      if (!r.ok) throw new Error(`GET me: ${r.status}`);
    },
  });
  setStatus('connecting');

  let online = false;
  sw.on('connect', ({ reconnect }) => {
    online = true;
    setStatus('online');
    if (reconnect) note('Reconnected.', 'reconnected'); // the client joins the room again by itself
    refreshRooms();
  });
  sw.on('disconnect', () => {
    if (online) note('Connection lost. Reconnecting…', 'error'); // once, not at every attempt
    online = false;
    setStatus('reconnecting');
  });
  sw.on('unauthorized', () => {
    // The client has stopped; a sign-in makes a new one.
    sw = null;
    online = false;
    setStatus('offline');
    $('input').disabled = $('send').disabled = true;
    note('You are signed out.', 'error');
    showLogin('Your sign-in has expired or was refused: sign in again.');
  });
  sw.on('error', (err) => note(err.message || err.code, 'error', err.traceId));
  sw.on('trace', addTrace);

  sw.on('chat.msg', (m, meta) => {
    if (meta.room !== joined) return;
    clearTyping(m.from);
    addMessage(m, meta.traceId);
  });
  sw.on('chat.private', (p, meta) => addPrivate(p, meta.traceId));
  sw.on('room.presence', (p, meta) => {
    if (meta.room !== joined || members.has(p.key) === p.present) return;
    if (p.present) members.add(p.key);
    else {
      members.delete(p.key);
      clearTyping(p.key);
    }
    renderMembers();
    setRoomCount(joined, members.size);
    note(`${p.key} ${p.present ? 'joined' : 'left'}`);
  });
  sw.on('chat.typing', (t, meta) => {
    if (meta.room === joined && t.nick !== me.nick) showTyping(t.nick);
  });
  enterRoom(me.room); // sent once the connection opens
}

/**
 * Joins room under our signed name and shows it. The room's last messages
 * follow the reply; the client re-joins the room after every reconnection,
 * and each reply, this one and the re-joins', shows the room as it arrives,
 * before the messages that follow it (onReply).
 */
async function enterRoom(room) {
  const previous = me.room;
  me.room = room;
  const onReply = (reply) => {
    if (me.room === room) showRoom(room, reply);
  };
  try {
    await sw.join(room, { recent: RECENT, onReply });
  } catch (err) {
    // Dropped before the reply: the client joins again when it is back,
    // and onReply shows the room.
    if (['disconnected', 'timeout', 'closed', 'unauthorized'].includes(err.code)) return;
    if (me.room === room) me.room = joined ?? previous; // refused: stay where we are
    note(err.message, 'error');
    return;
  }
  refreshRooms();
}

async function refreshRooms() {
  if (!sw || !sw.connected) return;
  try {
    renderRooms(await sw.request('chat.rooms', undefined, { traceparent: null })); // not the user's doing
  } catch {
    // the next refresh will do
  }
}

// ------------------------------------------------------------ rendering

/**
 * Shows room as a join's reply, a first one or a re-join's, says it is:
 * who is there, and our name. Unless the reply says the messages we missed
 * follow ("recovered"), the room's messages the page shows go: the room's
 * last messages follow the reply.
 */
function showRoom(room, reply) {
  if (room !== joined) {
    $('messages').replaceChildren();
  } else if (!reply.recovered) {
    // Back, but the server could not tell what we missed. What is not the
    // room's (private messages, notes) stays.
    for (const li of document.querySelectorAll('#messages .msg:not(.private)')) li.remove();
    note('Back: here are the last messages of the room.', 'resync');
  }
  if (room !== joined || !reply.recovered) {
    for (const nick of [...typing.keys()]) clearTyping(nick);
  }
  if (room !== joined) {
    whisper(null);
    if (joined !== null) sw.leave(joined).catch(() => {}); // gone with the connection, if it drops first
    history.replaceState(null, '', '#' + encodeURIComponent(room));
  }
  joined = room;
  const st = reply.state ?? {};
  if (st.nick) me.nick = st.nick;
  if (st.maxLength) maxLength = st.maxLength;
  showNode(st.node ?? '');
  members.clear();
  for (const nick of Object.keys(reply.present ?? {})) members.add(nick);
  renderMembers();
  setRoomCount(joined, members.size);
  $('room-title').textContent = '#' + joined;
  $('me').textContent = me.nick;
  $('input').placeholder = 'Message #' + joined;
  $('input').disabled = $('send').disabled = false;
  document.title = `#${joined} · Shockwave chat`;
  highlightRoom();
}

/**
 * Says which server the page is connected to, when the chat runs on
 * several: the rooms listed and private messages are that server's.
 */
function showNode(node) {
  $('node').hidden = node === '';
  $('node').textContent = node === '' ? '' : 'on ' + node;
  $('rooms-hint').hidden = node === '';
  $('rooms-hint').textContent =
    node === '' ? '' : `The chat runs on several servers: listed are the rooms open on this one, ${node}; a room of another opens here when you join it.`;
  $('people-hint').textContent =
    node === '' ? 'Click a name to whisper.' : `Click a name to whisper: private messages reach those connected to this server, ${node}.`;
}

/** Shows a message; traceId is the trace it was sent in, if any. */
function addMessage(m, traceId) {
  const li = el('li', m.from === me.nick ? 'msg mine' : 'msg');
  const head = el('div', 'head');
  head.append(el('span', 'from', m.from), el('time', 'at', clock(m.at)));
  li.append(head, el('div', 'text', m.text));
  if (traceId) li.append(traceTag(traceId));
  append(li);
}

function addPrivate(p, traceId) {
  const mine = p.from === me.nick;
  const li = el('li', 'msg private' + (mine ? ' mine' : ''));
  const head = el('div', 'head');
  const who = mine ? `you → ${p.to}` : `${p.from} → you`;
  head.append(el('span', 'from', who), el('span', 'tag', 'private'), el('time', 'at', clock(p.at)));
  li.append(head, el('div', 'text', p.text));
  if (traceId) li.append(traceTag(traceId));
  append(li);
}

/** A line of the page's own: presence, errors; with the trace id of an error, if any. */
function note(text, kind = 'info', traceId) {
  const li = el('li', 'note ' + kind, text);
  if (traceId) li.append(' ', traceTag(traceId));
  append(li);
}

function append(li) {
  const list = $('messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(li);
  while (list.children.length > 500) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function renderMembers() {
  const items = [...members].sort().map((nick) => {
    const b = el('button', 'member', nick);
    b.type = 'button';
    if (nick === me.nick) {
      b.disabled = true;
      b.append(el('span', 'you', ' (you)'));
    } else {
      b.addEventListener('click', () => {
        whisper(nick);
        closePanels();
      });
    }
    const li = el('li');
    li.append(b);
    return li;
  });
  $('members').replaceChildren(...items);
  $('count').textContent = String(members.size);
  if (whisperTo !== null && !members.has(whisperTo)) whisper(null);
}

function renderRooms(rooms) {
  const items = rooms.map((r) => {
    const b = el('button', 'room');
    b.type = 'button';
    b.dataset.room = r.name;
    b.append(el('span', 'name', '#' + r.name), el('span', 'badge', String(r.members)));
    b.addEventListener('click', () => {
      closePanels();
      if (sw && r.name !== joined) enterRoom(r.name);
    });
    const li = el('li');
    li.append(b);
    return li;
  });
  $('rooms').replaceChildren(...items);
  highlightRoom();
}

/** Updates the member count of a room in the list, between refreshes. */
function setRoomCount(room, n) {
  for (const b of document.querySelectorAll('#rooms .room')) {
    if (b.dataset.room === room) b.querySelector('.badge').textContent = String(n);
  }
}

function highlightRoom() {
  for (const b of document.querySelectorAll('#rooms .room')) {
    if (b.dataset.room === joined) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
}

function showTyping(nick) {
  clearTimeout(typing.get(nick));
  typing.set(nick, setTimeout(() => clearTyping(nick), 4000));
  renderTyping();
}

function clearTyping(nick) {
  if (!typing.has(nick)) return;
  clearTimeout(typing.get(nick));
  typing.delete(nick);
  renderTyping();
}

function renderTyping() {
  const names = [...typing.keys()];
  $('typing').textContent =
    names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`;
}

function whisper(nick) {
  whisperTo = nick;
  $('private-to').hidden = nick === null;
  $('private-name').textContent = nick ?? '';
  $('input').placeholder = nick === null ? 'Message #' + (joined ?? '') : `Private message to ${nick}`;
  if (nick !== null) $('input').focus();
}

// ------------------------------------------------------------ debug view

/** Whether the debug view is on: ?debug= says so (and is remembered), else localStorage. */
function initialDebug() {
  const q = new URLSearchParams(location.search).get('debug');
  if (q !== null) {
    const on = !['0', 'false', 'off'].includes(q);
    saveDebug(on);
    return on;
  }
  try {
    return localStorage.getItem('chat.debug') === '1';
  } catch {
    return false;
  }
}

function saveDebug(on) {
  try {
    localStorage.setItem('chat.debug', on ? '1' : '0');
  } catch {
    // not remembered, but used
  }
}

/** Turns the debug view on or off: the client's tracing, the panel, the messages' trace ids. */
function setDebug(on) {
  debug = on;
  saveDebug(on);
  if (sw) sw.options.trace = on;
  renderDebug();
}

function renderDebug() {
  document.body.classList.toggle('debug', debug);
  $('debug').hidden = !debug;
  $('debug-toggle').checked = debug;
  if (!debug) $('traces').replaceChildren();
}

/** Adds a row to the debug panel: a trace id the client sent or received. */
function addTrace({ direction, event, traceId, traceparent }) {
  if (!debug || !traceId || event === 'chat.typing') return; // others' typing would crowd out the rest
  const li = el('li', 'trace ' + direction);
  li.dataset.direction = direction;
  li.dataset.event = event;
  li.append(el('span', 'dir', direction === 'sent' ? '↑ sent' : '↓ received'), el('span', 'ev', event), traceTag(traceId, traceparent));
  const list = $('traces');
  list.prepend(li);
  while (list.children.length > MAX_TRACES) list.lastElementChild.remove();
}

/** A trace id, as text to select or click to copy; shown only in the debug view. */
function traceTag(traceId, traceparent) {
  const c = el('code', 'trace-id', traceId);
  c.title = 'Trace id: click to copy';
  if (traceparent) c.dataset.traceparent = traceparent;
  c.addEventListener('click', () => {
    navigator.clipboard?.writeText(traceId).then(
      () => c.classList.add('copied'),
      () => {}, // not allowed here: the text stays selectable
    );
  });
  return c;
}

function setStatus(state) {
  const s = $('status');
  s.dataset.state = state;
  s.textContent = { online: 'online', connecting: 'connecting…', reconnecting: 'reconnecting…', offline: 'offline' }[state];
}

function showLogin(error = '') {
  $('login-error').textContent = error;
  $('nick').value = me.nick || localStorage.getItem('chat.nick') || '';
  $('room').value = me.room;
  $('login').hidden = false;
  $('nick').focus();
}

function closePanels() {
  for (const id of ['rooms', 'people']) {
    $(id + '-panel').classList.remove('open');
    $('toggle-' + id).setAttribute('aria-expanded', 'false');
  }
}

// ------------------------------------------------------------ input

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('nick').value.trim();
  me.room = $('room').value.trim() || 'lobby';
  if (!name) return;
  $('login-submit').disabled = true;
  try {
    const r = await fetch('login', { method: 'POST', body: new URLSearchParams({ name }) });
    if (!r.ok) {
      $('login-error').textContent = (await r.text()).trim() || `sign-in failed (${r.status})`;
      return;
    }
    me.nick = (await r.json()).name;
  } catch {
    $('login-error').textContent = 'The server cannot be reached; try again.';
    return;
  } finally {
    $('login-submit').disabled = false;
  }
  localStorage.setItem('chat.nick', me.nick); // to fill the form in next time
  $('login').hidden = true;
  start();
});

$('send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('input');
  const text = input.value;
  if (!text.trim() || joined === null || !sw) return;
  const n = [...text].length;
  if (n > maxLength) {
    note(`That message is ${n} characters long; the limit is ${maxLength}.`, 'error');
    return;
  }
  input.value = '';
  const sent =
    whisperTo === null
      ? sw.request('chat.send', { text }, { room: joined })
      : sw.request('chat.private', { to: whisperTo, text }, { room: joined });
  sent.catch((err) => {
    note(err.message, 'error', err.traceId);
    if (input.value === '') input.value = text; // give it back to retry
  });
});

$('input').addEventListener('input', () => {
  const now = Date.now();
  if (sw && joined !== null && whisperTo === null && now - lastTyping > 2500) {
    lastTyping = now;
    sw.emit('chat.typing', undefined, { room: joined, traceparent: null }); // too many to trace
  }
});

$('private-cancel').addEventListener('click', () => whisper(null));

$('debug-toggle').addEventListener('change', (e) => setDebug(e.target.checked));

$('new-room').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('new-room-name').value.trim();
  if (!name) return;
  $('new-room-name').value = '';
  closePanels();
  if (sw) enterRoom(name);
});

for (const id of ['rooms', 'people']) {
  $('toggle-' + id).addEventListener('click', () => {
    const open = !$(id + '-panel').classList.contains('open');
    closePanels();
    $(id + '-panel').classList.toggle('open', open);
    $('toggle-' + id).setAttribute('aria-expanded', String(open));
  });
}

// ------------------------------------------------------------ helpers

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function hashRoom() {
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch {
    return '';
  }
}

/** Starts the chat if the cookie still signs us in, else asks for a name. */
async function resume() {
  try {
    const r = await fetch('me', { cache: 'no-store' });
    if (r.ok) {
      me.nick = (await r.json()).name;
      $('login').hidden = true;
      start();
      return;
    }
  } catch {
    // the server cannot be reached: the form says so when it is used
  }
  showLogin();
}

setInterval(refreshRooms, 10000);
renderDebug();
resume();
