// The staff inbox: plain JavaScript over the gateway's own API, with the
// staff member's session cookie (and its CSRF token on every change), and
// the tenant's live events from /inbox/stream. Guest text is only ever set
// as text (textContent), never as markup.

const API = '/api/v1/whatsapp';
const $ = (id) => document.getElementById(id);

const state = {
  me: null, csrf: '', view: 'mine', status: '', search: '', cursor: null,
  list: [], open: null, openData: null, staff: [], templates: null, live: null, pollTimer: null,
};

// api calls the API; it throws an Error whose message is the API's own.
async function api(method, path, body, isForm) {
  const headers = {};
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = state.csrf;
  let payload;
  if (body !== undefined) {
    if (isForm) payload = body; else { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  }
  const r = await fetch(API + path, { method, headers, body: payload, credentials: 'same-origin' });
  if (r.status === 204) return null;
  const v = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error((v.error && v.error.message) || ('HTTP ' + r.status));
    e.status = r.status; e.code = v.error && v.error.code;
    if (r.status === 401) showLogin();
    throw e;
  }
  return v;
}

function el(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') n.className = v; else if (k === 'text') n.textContent = v; else n.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) n.append(c);
  return n;
}

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

function staffName(id) {
  const s = state.staff.find((x) => x.id === id);
  return s ? s.name || s.username : id;
}

// ---- session

function showLogin(msg) {
  stopLive();
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = msg || '';
  const t = new URLSearchParams(location.search).get('tenant') || localStorage.getItem('wagate.tenant') || '';
  if (t && !$('login-tenant').value) $('login-tenant').value = t;
  ($('login-tenant').value ? $('login-username') : $('login-tenant')).focus();
}

async function start() {
  try {
    const v = await api('GET', '/auth/me');
    await enter(v);
  } catch (e) {
    if (e.status !== 401) showLogin(e.message);
  }
}

async function enter(v) {
  state.me = v.staff; state.csrf = v.csrf_token;
  $('login').hidden = true;
  $('app').hidden = false;
  $('me').textContent = (v.staff.name || v.staff.username) + ' · ' + v.staff.role;
  $('availability').value = v.staff.availability || 'online';
  if (!v.staff.departments || v.staff.departments.length === 0) document.querySelector('[data-view=department]').hidden = true;
  try { state.staff = (await api('GET', '/staff')).staff || []; } catch { state.staff = [v.staff]; }
  if ('Notification' in window && Notification.permission === 'default') Notification.requestPermission().catch(() => {});
  await loadList(true);
  startLive();
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('login-error').textContent = '';
  const tenant = $('login-tenant').value.trim();
  try {
    const v = await api('POST', '/auth/login', { tenant, username: $('login-username').value.trim(), password: $('login-password').value });
    localStorage.setItem('wagate.tenant', tenant);
    $('login-password').value = '';
    // Signing in is being at the desk.
    state.csrf = v.csrf_token;
    try { v.staff = await api('PATCH', '/staff/me', { availability: 'online' }); } catch { /* stays as it was */ }
    await enter(v);
  } catch (e) {
    $('login-error').textContent = e.message;
  }
});

$('logout').addEventListener('click', async () => {
  try { await api('POST', '/auth/logout'); } catch { /* gone already */ }
  state.me = null;
  showLogin();
});

$('availability').addEventListener('change', async () => {
  try { await api('PATCH', '/staff/me', { availability: $('availability').value }); } catch (e) { alert(e.message); }
});

// ---- the list

function listQuery() {
  const q = new URLSearchParams({ limit: '30' });
  if (state.view === 'mine') q.set('assigned_to', state.me.id);
  if (state.view === 'unassigned') q.set('assigned_to', 'none');
  if (state.view === 'department' && state.me.departments && state.me.departments[0]) q.set('department', state.me.departments[0]);
  if (state.status) q.set('status', state.status);
  const s = state.search.trim();
  if (s) {
    if (/^\+?[0-9]{6,15}$/.test(s)) q.set('guest_phone', s.startsWith('+') ? s : '+' + s); else q.set('q', s);
  }
  if (state.cursor) q.set('cursor', state.cursor);
  return q;
}

async function loadList(reset) {
  if (reset) state.cursor = null;
  let v;
  try { v = await api('GET', '/conversations?' + listQuery()); } catch (e) { $('conversations').replaceChildren(el('li', { class: 'error', text: e.message })); return; }
  state.list = reset ? v.conversations : state.list.concat(v.conversations);
  state.cursor = v.next_cursor;
  $('more').hidden = !v.next_cursor;
  renderList();
  if (state.view === 'mine') $('badge-mine').textContent = String(state.list.reduce((n, c) => n + (c.unread_count > 0 ? 1 : 0), 0) || '');
}

function renderList() {
  const ul = $('conversations');
  ul.replaceChildren(...state.list.map((c) => {
    const li = el('li', { tabindex: '0', role: 'button', 'data-id': c.conversation_id, 'aria-current': c.conversation_id === state.open ? 'true' : 'false' },
      el('span', { class: 'name', text: c.guest_name || c.guest_phone }),
      el('span', { class: 'when', text: when(c.updated_at) }),
      el('span', { class: 'last', text: c.last_message ? (c.last_message.direction === 'outbound' ? '↪ ' : '') + c.last_message.preview : '' }),
      el('span', {}, el('span', { class: 'chip', text: c.status }), ' ', c.unread_count > 0 ? el('span', { class: 'badge unread', text: String(c.unread_count), 'aria-label': c.unread_count + ' unread' }) : null));
    li.addEventListener('click', () => openConversation(c.conversation_id));
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openConversation(c.conversation_id); } });
    return li;
  }));
  if (state.list.length === 0) ul.append(el('li', { class: 'muted', text: 'No conversations here.' }));
}

for (const b of document.querySelectorAll('.views button')) {
  b.addEventListener('click', () => {
    state.view = b.dataset.view;
    for (const x of document.querySelectorAll('.views button')) x.setAttribute('aria-selected', String(x === b));
    loadList(true);
  });
}
$('status-filter').addEventListener('change', () => { state.status = $('status-filter').value; loadList(true); });
let searchTimer;
$('search').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => { state.search = $('search').value; loadList(true); }, 250);
});
$('more').addEventListener('click', () => loadList(false));
$('back').addEventListener('click', () => { $('app').classList.remove('reading'); state.open = null; renderList(); });

// ---- a conversation

async function openConversation(id) {
  state.open = id;
  $('app').classList.add('reading');
  renderList();
  await loadConversation();
}

async function loadConversation(afterAction) {
  const id = state.open;
  if (!id) return;
  let c;
  try { c = await api('GET', '/conversations/' + encodeURIComponent(id) + '?limit=100'); } catch (e) {
    if (e.status === 404 && afterAction) {
      // Handed to someone this member may not follow (an agent's view):
      // back to the list, with the notice of what was done.
      state.open = null;
      $('conversation').hidden = true;
      $('empty').hidden = false;
      $('app').classList.remove('reading');
      return;
    }
    $('send-error').textContent = e.message;
    return;
  }
  if (state.open !== id) return;
  state.openData = c;
  $('empty').hidden = true;
  $('conversation').hidden = false;
  $('guest-name').textContent = c.guest_name || c.guest_phone;
  $('guest-phone').textContent = c.guest_name ? c.guest_phone : '';
  $('conv-status').textContent = c.status;
  $('optout').hidden = !c.guest_opted_out;
  const w = c.window || {};
  const open = !!w.within_window;
  const left = w.window_expires_at ? Math.max(0, Math.round((new Date(w.window_expires_at) - Date.now()) / 60000)) : 0;
  $('window').textContent = open ? 'Window open · ' + Math.floor(left / 60) + ' h ' + (left % 60) + ' min left' : 'Window closed';
  const info = [];
  if (c.assigned_to) info.push('Assigned to ' + staffName(c.assigned_to));
  if (c.service_request_id) info.push('Service request ' + c.service_request_id);
  if (c.resolution && c.resolution !== null && typeof c.resolution === 'object') info.push('Resolved' + (c.resolution.resolution_notes ? ': ' + c.resolution.resolution_notes : ''));
  $('conv-info').textContent = info.join(' · ');
  renderAssign(c);
  renderMessages(c.messages || []);
  if (c.unread_count > 0 && document.visibilityState === 'visible' && c.status !== 'closed') {
    // What arrives in the open conversation is read as it shows.
    api('POST', '/conversations/' + encodeURIComponent(id) + '/read', {}).then(() => loadList(true)).catch(() => {});
  }
  const closed = c.status === 'closed';
  $('composer').hidden = !open || closed || c.guest_opted_out;
  $('template-form').hidden = open || closed || c.guest_opted_out;
  if (!open && !closed) loadTemplates();
}

function renderAssign(c) {
  const sel = $('assign');
  const opts = [el('option', { value: '', text: 'Nobody' })];
  for (const s of state.staff) {
    if (s.disabled) continue;
    opts.push(el('option', { value: 'staff:' + s.id, text: (s.name || s.username) + (s.availability && s.availability !== 'online' ? ' (' + s.availability + ')' : '') }));
  }
  const depts = new Set();
  for (const s of state.staff) for (const d of s.departments || []) depts.add(d);
  for (const d of depts) opts.push(el('option', { value: 'dept:' + d, text: 'Department: ' + d.replace(/_/g, ' ') }));
  sel.replaceChildren(...opts);
  sel.value = c.assigned_to ? 'staff:' + c.assigned_to : (c.assigned_department ? 'dept:' + c.assigned_department : '');
}

function ticks(m) {
  switch (m.status) {
    case 'read': return ['✓✓', 'read', 'Read'];
    case 'delivered': return ['✓✓', '', 'Delivered'];
    case 'sent': return ['✓', '', 'Sent'];
    case 'failed': return ['✗', 'failed', 'Failed' + (m.failure_reason ? ': ' + m.failure_reason : '')];
    default: return ['🕓', '', m.status || 'queued'];
  }
}

function mediaOf(m) {
  const c = m.content || {};
  const t = m.type;
  // An outbound message's content is Meta's object for its type.
  const obj = c[t] || c;
  const url = m.media_url || (m.media && m.media.url) || obj.link;
  if (!url) return null;
  if (t === 'image' || t === 'sticker') return el('img', { src: url, alt: m.preview || t });
  const name = (m.media && m.media.filename) || obj.filename || t;
  return el('a', { href: url, target: '_blank', rel: 'noopener', text: (t === 'audio' ? '🔊 ' : t === 'video' ? '🎬 ' : '📄 ') + name });
}

function renderMessages(msgs) {
  const ol = $('messages');
  const byID = new Map(msgs.map((m) => [m.message_id, m]));
  ol.replaceChildren(...msgs.map((m) => {
    const out = m.direction === 'outbound';
    const li = el('li', { class: 'msg ' + (out ? 'out' : 'in'), 'data-id': m.message_id, 'data-status': m.status || '' });
    if (m.reply_to) {
      const orig = byID.get(m.reply_to);
      li.append(el('div', { class: 'reply', text: '↩ ' + (orig ? orig.preview : 'an earlier message') }));
    }
    const media = mediaOf(m);
    if (media) li.append(media);
    if (m.type === 'template' && m.content && m.content.name) li.append(el('div', { class: 'muted small', text: 'Template ' + m.content.name }));
    li.append(el('div', { class: 'text', text: m.preview || '' }));
    const meta = el('div', { class: 'meta' }, el('time', { datetime: m.timestamp, text: when(m.timestamp) }));
    if (out) {
      if (m.staff_member_id) meta.prepend(el('span', { text: staffName(m.staff_member_id) }));
      const [sym, cls, label] = ticks(m);
      meta.append(el('span', { class: 'ticks ' + cls, title: label, 'aria-label': label, text: sym }));
      if (m.status === 'failed' && m.failure_reason) meta.append(el('span', { class: 'error', text: m.failure_reason }));
    }
    li.append(meta);
    return li;
  }));
  ol.scrollTop = ol.scrollHeight;
}

// ---- actions

async function act(action, body) {
  $('send-error').textContent = '';
  $('notice').textContent = '';
  let done = null;
  try {
    done = await api('POST', '/conversations/' + encodeURIComponent(state.open) + '/' + action, body || {});
  } catch (e) {
    $('send-error').textContent = e.message;
  }
  if (done && action === 'assign') {
    const to = done.assigned_to ? staffName(done.assigned_to) : (done.assigned_department ? 'the ' + done.assigned_department.replace(/_/g, ' ') + ' department' : 'nobody');
    $('notice').textContent = 'Assigned to ' + to + '.';
  }
  await Promise.all([loadConversation(true), loadList(true)]);
}

for (const b of document.querySelectorAll('.actions [data-action]')) b.addEventListener('click', () => act(b.dataset.action));
$('assign').addEventListener('change', () => {
  const v = $('assign').value;
  if (v.startsWith('dept:')) act('assign', { department: v.slice(5) });
  else act('assign', { assigned_to: v ? v.slice(6) : null });
});
$('resolve-btn').addEventListener('click', () => $('resolve-dialog').showModal());
$('resolve-cancel').addEventListener('click', () => $('resolve-dialog').close());
$('resolve-form').addEventListener('submit', () => {
  const body = { resolution_notes: $('resolve-notes').value, resolved_by: state.me.id };
  if ($('resolve-rating').value) body.satisfaction_rating = Number($('resolve-rating').value);
  act('resolve', body);
});
$('link-btn').addEventListener('click', () => $('link-dialog').showModal());
$('link-cancel').addEventListener('click', () => $('link-dialog').close());
$('link-form').addEventListener('submit', () => act('link', { service_request_id: $('link-id').value.trim() }));

// ---- composing

$('quick-btn').addEventListener('click', () => { $('quick').hidden = !$('quick').hidden; });
$('text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('composer').requestSubmit(); }
});
// The guest sees the desk typing (WhatsApp shows it for up to 25 s, or
// until the reply): once per conversation every 20 s while writing.
let typingSent = { id: null, at: 0 };
$('text').addEventListener('input', () => {
  const c = state.openData;
  if (!c || !$('text').value.trim()) return;
  const now = Date.now();
  if (typingSent.id === c.conversation_id && now - typingSent.at < 20000) return;
  typingSent = { id: c.conversation_id, at: now };
  api('POST', '/conversations/' + encodeURIComponent(c.conversation_id) + '/typing', {}).catch(() => {});
});

function sendBase() {
  const c = state.openData;
  return { guest_phone: c.guest_phone, from: c.from, conversation_id: c.conversation_id, staff_member_id: state.me.id };
}

$('composer').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('send-error').textContent = '';
  const text = $('text').value.trim();
  const file = $('file').files[0];
  const replies = [...document.querySelectorAll('.quick-reply')].map((i) => i.value.trim()).filter(Boolean);
  try {
    if (file) {
      const fd = new FormData();
      fd.append('media', file);
      const up = await api('POST', '/media/upload', fd, true);
      const type = file.type.startsWith('image/') ? 'image' : file.type.startsWith('audio/') ? 'audio' : file.type.startsWith('video/') ? 'video' : 'document';
      const content = { media_id: up.media_id };
      if (type === 'document') content.filename = file.name;
      if (text && type !== 'audio') content.caption = text;
      await api('POST', '/messages/send', { ...sendBase(), message_type: type, content });
    } else if (replies.length > 0) {
      if (!text) throw new Error('Write the question the quick replies answer.');
      await api('POST', '/messages/send-interactive', { ...sendBase(), interactive_type: 'buttons',
        content: { text, buttons: replies.map((t, i) => ({ id: 'reply_' + (i + 1), title: t })) } });
    } else if (text) {
      await api('POST', '/messages/send', { ...sendBase(), message_type: 'text', content: { text } });
    } else {
      return;
    }
    $('text').value = ''; $('file').value = '';
    for (const i of document.querySelectorAll('.quick-reply')) i.value = '';
    $('quick').hidden = true;
    await loadConversation();
  } catch (e) {
    $('send-error').textContent = e.message;
    if (e.code === 'MESSAGE_WINDOW_EXPIRED') loadConversation();
  }
});

async function loadTemplates() {
  if (!state.templates) {
    try { state.templates = (await api('GET', '/templates?status=APPROVED')).templates || []; } catch (e) { $('send-error').textContent = e.message; return; }
  }
  const sel = $('template');
  if (sel.options.length === state.templates.length && sel.options.length > 0) return;
  sel.replaceChildren(...state.templates.map((t, i) => el('option', { value: String(i), text: t.name + ' (' + t.language + ')' })));
  renderTemplateParams();
}

function bodyText(t) {
  const b = (t.components || []).find((c) => c.type === 'BODY');
  return b ? b.text : '';
}

function renderTemplateParams() {
  const t = state.templates[Number($('template').value)];
  const box = $('template-params');
  if (!t) { box.replaceChildren(); return; }
  const ex = (t.example && t.example.parameters) || {};
  box.replaceChildren(...(t.parameters || []).map((p) => el('label', {}, p.name + (p.component ? ' (' + p.component.toLowerCase() + ')' : ''),
    el('input', { 'data-key': p.name, placeholder: p.example || ex[p.name] || '', required: !!p.required }))));
  for (const i of box.querySelectorAll('input')) i.addEventListener('input', previewTemplate);
  previewTemplate();
}

function previewTemplate() {
  const t = state.templates[Number($('template').value)];
  if (!t) return;
  const vals = {};
  for (const i of $('template-params').querySelectorAll('input')) vals[i.dataset.key] = i.value || i.placeholder;
  $('template-preview').textContent = bodyText(t).replace(/\{\{\s*([\w.]+)\s*\}\}/g, (m, k) => (vals[k] !== undefined ? vals[k] : m));
}

$('template').addEventListener('change', renderTemplateParams);
$('template-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('send-error').textContent = '';
  const t = state.templates[Number($('template').value)];
  const parameters = {};
  for (const i of $('template-params').querySelectorAll('input')) if (i.value !== '') parameters[i.dataset.key] = i.value;
  try {
    const b = sendBase();
    await api('POST', '/templates/send', { guest_phone: b.guest_phone, from: b.from, conversation_id: b.conversation_id,
      staff_member_id: b.staff_member_id, template_name: t.name, language: t.language, parameters });
    await loadConversation();
  } catch (e) {
    $('send-error').textContent = e.message;
  }
});

// ---- live

function notify(title, body) {
  if ('Notification' in window && Notification.permission === 'granted' && document.visibilityState !== 'visible') {
    try { new Notification(title, { body }); } catch { /* not allowed here */ }
  }
}

let refreshTimer;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { loadList(true); if (state.open) loadConversation(); }, 150);
}

function startLive() {
  stopLive();
  const es = new EventSource(API + '/inbox/stream');
  state.live = es;
  es.addEventListener('ready', () => { $('live').classList.add('on'); refreshSoon(); });
  es.onerror = () => $('live').classList.remove('on');
  const onConversation = (ev) => {
    const d = JSON.parse(ev.data);
    const shown = state.list.find((c) => c.conversation_id === d.conversation_id);
    if (ev.type === 'inbound_message' || ev.type === 'media_received') {
      const mine = shown && shown.assigned_to === state.me.id;
      if (mine || !shown) notify('New guest message', shown ? (shown.guest_name || shown.guest_phone) : 'A guest wrote');
    }
    if (ev.type === 'conversation_updated' && shown && shown.assigned_to !== state.me.id) {
      // May have been assigned to me: the reload shows it under "mine".
    }
    refreshSoon();
  };
  for (const k of ['inbound_message', 'media_received', 'conversation_updated', 'guest_opted_out', 'guest_opted_in']) es.addEventListener(k, onConversation);
  es.addEventListener('message_status', (ev) => {
    const d = JSON.parse(ev.data);
    if (state.open && d.conversation_id === state.open) refreshSoon();
  });
  // A safety net for a stream a proxy holds back: the open conversation
  // is reloaded now and then too.
  state.pollTimer = setInterval(() => { if (state.open && document.visibilityState === 'visible') loadConversation(); }, 15000);
}

function stopLive() {
  if (state.live) { state.live.close(); state.live = null; }
  clearInterval(state.pollTimer);
  $('live').classList.remove('on');
}

start();
