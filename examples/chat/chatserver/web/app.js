// The chat page. A plain ES module, no build step: it speaks the protocol of
// examples/chat/chatserver (see its doc.go) through Shockwave's browser
// client, shockwave.js, which reconnects with backoff by itself; the page
// joins its room again on every connection, and the server replays the
// room's history.
//
// Every string from the network goes into the page as text (textContent),
// never as HTML.
import { connect } from './shockwave.js';

const $ = (id) => document.getElementById(id);

const me = {
  nick: localStorage.getItem('chat.nick') || '',
  room: hashRoom() || 'lobby',
  token: tabToken(), // lets this tab take its nickname back after a reconnection
};

let sw = null; // the client, once a nickname is chosen
let joined = null; // the room shown, from the last chat.state
let lastId = 0; // of the last message of that room shown
let maxLength = 2000; // characters, from chat.state
let whisperTo = null; // the member private messages go to, or null
let lastTyping = 0; // when chat.typing was last sent
const members = new Set();
const typing = new Map(); // nick -> timer

// ------------------------------------------------------------ connection

function start() {
  if (sw) {
    enterRoom(me.room);
    return;
  }
  const url = new URL('ws', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  sw = connect(url.href);
  setStatus('connecting');

  let online = false;
  sw.on('connect', ({ reconnect }) => {
    online = true;
    setStatus('online');
    if (reconnect) note('Reconnected.', 'reconnected');
    enterRoom(me.room); // after every (re)connection
  });
  sw.on('disconnect', ({ code }) => {
    if (code === 4001) {
      // Another connection of this tab's token took our nickname: a
      // duplicated tab. Stop, or the two would take turns.
      sw.close();
      setStatus('offline');
      note('This chat was opened again elsewhere; reload the page to come back.', 'error');
      return;
    }
    if (online) note('Connection lost. Reconnecting…', 'error'); // once, not at every attempt
    online = false;
    setStatus('reconnecting');
  });
  sw.on('error', (err) => note(err.message || err.code, 'error'));

  sw.on('chat.state', showState);
  sw.on('chat.msg', (m, meta) => {
    if (meta.room !== joined) return;
    clearTyping(m.from);
    addMessage(m);
  });
  sw.on('chat.private', addPrivate);
  sw.on('chat.presence', (p, meta) => {
    if (meta.room !== joined) return;
    if (p.action === 'join') members.add(p.nick);
    else members.delete(p.nick);
    if (p.action === 'leave') clearTyping(p.nick);
    renderMembers();
    setRoomCount(joined, p.count);
    note(`${p.nick} ${p.action === 'join' ? 'joined' : 'left'}`);
  });
  sw.on('chat.typing', (t, meta) => {
    if (meta.room === joined && t.nick !== me.nick) showTyping(t.nick);
  });

  setInterval(refreshRooms, 10000);
}

/** Joins room under our nickname; the server answers with chat.state first. */
async function enterRoom(room) {
  const previous = joined;
  try {
    await sw.request('chat.join', { nick: me.nick, token: me.token }, { room });
  } catch (err) {
    if (err.code === 'disconnected' || err.code === 'closed') return; // joined again on connect
    if (err.code === 'nick_taken' || err.code === 'bad_nick') {
      showLogin(err.message);
      return;
    }
    note(err.message, 'error');
    return;
  }
  me.room = room;
  history.replaceState(null, '', '#' + encodeURIComponent(room));
  if (previous !== null && previous !== room) {
    sw.emit('chat.leave', undefined, { room: previous });
  }
  refreshRooms();
}

async function refreshRooms() {
  if (!sw || !sw.connected) return;
  try {
    renderRooms(await sw.request('chat.rooms'));
  } catch {
    // the next refresh will do
  }
}

// ------------------------------------------------------------ rendering

/** Shows the room a join gave us: members and history. */
function showState(st) {
  if (st.room !== joined) {
    $('messages').replaceChildren();
    lastId = 0;
    whisper(null);
  } else if (st.history.length === 0 || st.history[st.history.length - 1].id < lastId) {
    lastId = 0; // the server started afresh: what it has is all new
  }
  joined = st.room;
  me.nick = st.nick;
  maxLength = st.maxLength;
  for (const m of st.history) {
    if (m.id > lastId) addMessage(m);
  }
  members.clear();
  for (const n of st.members) members.add(n);
  renderMembers();
  setRoomCount(joined, members.size);
  for (const nick of [...typing.keys()]) clearTyping(nick);
  $('room-title').textContent = '#' + joined;
  $('me').textContent = me.nick;
  $('input').placeholder = 'Message #' + joined;
  $('input').disabled = $('send').disabled = false;
  document.title = `#${joined} · Shockwave chat`;
  highlightRoom();
}

function addMessage(m) {
  lastId = Math.max(lastId, m.id);
  const li = el('li', m.from === me.nick ? 'msg mine' : 'msg');
  const head = el('div', 'head');
  head.append(el('span', 'from', m.from), el('time', 'at', clock(m.at)));
  li.append(head, el('div', 'text', m.text));
  append(li);
}

function addPrivate(p) {
  const mine = p.from === me.nick;
  const li = el('li', 'msg private' + (mine ? ' mine' : ''));
  const head = el('div', 'head');
  const who = mine ? `you → ${p.to}` : `${p.from} → you`;
  head.append(el('span', 'from', who), el('span', 'tag', 'private'), el('time', 'at', clock(p.at)));
  li.append(head, el('div', 'text', p.text));
  append(li);
}

/** A line of the page's own: presence, errors. */
function note(text, kind = 'info') {
  append(el('li', 'note ' + kind, text));
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
      if (r.name !== joined) enterRoom(r.name);
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

function setStatus(state) {
  const s = $('status');
  s.dataset.state = state;
  s.textContent = { online: 'online', connecting: 'connecting…', reconnecting: 'reconnecting…', offline: 'offline' }[state];
}

function showLogin(error = '') {
  $('login-error').textContent = error;
  $('nick').value = me.nick;
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

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  me.nick = $('nick').value.trim();
  me.room = $('room').value.trim() || 'lobby';
  if (!me.nick) return;
  localStorage.setItem('chat.nick', me.nick);
  $('login').hidden = true;
  start();
});

$('send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('input');
  const text = input.value;
  if (!text.trim() || joined === null) return;
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
    note(err.message, 'error');
    if (input.value === '') input.value = text; // give it back to retry
  });
});

$('input').addEventListener('input', () => {
  const now = Date.now();
  if (joined !== null && whisperTo === null && now - lastTyping > 2500) {
    lastTyping = now;
    sw.emit('chat.typing', undefined, { room: joined });
  }
});

$('private-cancel').addEventListener('click', () => whisper(null));

$('new-room').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('new-room-name').value.trim();
  if (!name) return;
  $('new-room-name').value = '';
  closePanels();
  enterRoom(name);
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

function tabToken() {
  let t = sessionStorage.getItem('chat.token');
  if (!t) {
    const b = crypto.getRandomValues(new Uint8Array(16));
    t = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    sessionStorage.setItem('chat.token', t);
  }
  return t;
}

showLogin();
