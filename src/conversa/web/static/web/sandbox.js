/* Sandbox customer simulator: posts customer messages to the sandbox webhook, shows the thread
   (from /sandbox/<line>/messages/), follows /ws/sandbox/<line>/ and acknowledges agent messages
   with delivery/read status webhooks. All text is written with textContent. */
(() => {
  'use strict';
  const T = JSON.parse(document.getElementById('i18n').textContent);
  const $ = (id) => document.getElementById(id);
  const lineSel = $('sim-line');
  if (!lineSel) return;
  const acked = new Map(); // provider id -> highest status posted
  let phone = '';
  let ws = null;
  let backoff = 500;
  let pollTimer = null;
  let loading = null;
  let again = false;

  function storeSetup() {
    try { localStorage.setItem('conversa-sim', JSON.stringify({ line: lineSel.value, phone: $('sim-phone').value, name: $('sim-name').value })); } catch (e) { /* private mode */ }
  }
  try {
    const saved = JSON.parse(localStorage.getItem('conversa-sim') || 'null');
    if (saved) {
      if ([...lineSel.options].some((o) => o.value === saved.line)) lineSel.value = saved.line;
      if (saved.phone) $('sim-phone').value = saved.phone;
      if (saved.name) $('sim-name').value = saved.name;
    }
  } catch (e) { /* ignore */ }

  // A line whose provider has a webhook secret refuses the simulator's unsigned posts (401): that
  // is said, and stays said while that line is chosen (a refresh clearing other errors keeps it).
  let lineProblem = '';
  function checkLine() {
    const opt = lineSel.selectedOptions[0];
    lineProblem = opt && opt.dataset.signed ? T.signed_line : '';
    showError('');
  }
  function showError(text) { $('sim-error').textContent = text || lineProblem; }
  function setConn(state) {
    const el = $('conn');
    el.dataset.state = state;
    el.querySelector('.conn-label').textContent = state === 'live' ? T.live : state === 'offline' ? T.offline : T.connecting;
  }

  async function postWebhook(payload) {
    const r = await fetch(`/webhooks/sandbox/${lineSel.value}/`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload),
    });
    if (r.status === 401) {
      lineProblem = T.signed_line;
      throw new Error(T.signed_line);
    }
    if (!r.ok) {
      let detail = `HTTP ${r.status}`;
      try { detail = (await r.json()).message || detail; } catch (e) { /* not JSON */ }
      throw new Error(detail);
    }
  }

  const RANK = { queued: 0, sent: 1, delivered: 2, read: 3 };
  async function acknowledge(messages) {
    const deliver = $('sim-deliver').checked;
    const read = $('sim-read').checked && document.visibilityState === 'visible';
    for (const m of messages) {
      if (m.direction !== 'out' || !m.provider_message_id || !(m.status in RANK)) continue;
      const target = read ? 'read' : deliver ? 'delivered' : null;
      if (!target) continue;
      const done = acked.get(m.provider_message_id) || m.status;
      if (RANK[done] >= RANK[target]) continue;
      acked.set(m.provider_message_id, target);
      try {
        if (RANK[done] < RANK.delivered) await postWebhook({ status: { id: m.provider_message_id, status: 'delivered' } });
        if (target === 'read') await postWebhook({ status: { id: m.provider_message_id, status: 'read' } });
      } catch (err) { acked.delete(m.provider_message_id); showError(err.message); }
    }
  }

  const TICKS = { queued: '◷', sent: '✓', delivered: '✓✓', read: '✓✓', failed: '!' };
  function render(data) {
    const thread = $('sim-thread');
    const stick = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
    thread.replaceChildren();
    $('sim-title').textContent = `${data.line.name} ${data.line.number}`;
    $('sim-sub').textContent = `${T.chatting_as} ${data.phone}`;
    if (!data.messages.length) {
      const p = document.createElement('p');
      p.className = 'muted center';
      p.textContent = T.say_hello;
      thread.append(p);
    }
    for (const m of data.messages) {
      const row = document.createElement('div');
      row.className = `msg msg-${m.direction}`;
      row.dataset.testid = 'sim-message';
      row.dataset.status = m.status;
      const bubble = document.createElement('div');
      bubble.className = 'bubble';
      if (m.media_url) {
        if (m.kind === 'image') {
          const img = document.createElement('img');
          img.className = 'media-img';
          img.src = m.media_url;
          img.alt = m.media_filename || 'image';
          bubble.append(img);
        } else {
          const a = document.createElement('a');
          a.className = 'doc';
          a.href = m.media_url;
          a.textContent = `⤓ ${m.media_filename || m.kind}`;
          bubble.append(a);
        }
      }
      if (m.body) {
        const body = document.createElement('div');
        body.className = 'body';
        body.style.whiteSpace = 'pre-wrap';
        body.textContent = m.body;
        bubble.append(body);
      }
      const meta = document.createElement('div');
      meta.className = 'meta';
      const time = document.createElement('time');
      time.textContent = new Date(m.created_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      meta.append(time);
      if (m.direction === 'out') {
        // The marks are for the eye; assistive technology reads the status in words.
        const ticks = document.createElement('span');
        const label = thread.dataset[`tick${m.status.charAt(0).toUpperCase()}${m.status.slice(1)}`] || m.status;
        ticks.className = `ticks ticks-${m.status}`;
        ticks.title = label;
        const marks = document.createElement('span');
        marks.setAttribute('aria-hidden', 'true');
        marks.textContent = TICKS[m.status] || '';
        const words = document.createElement('span');
        words.className = 'sr-only';
        words.textContent = label;
        ticks.append(marks, words);
        meta.append(ticks);
      }
      bubble.append(meta);
      if (m.status === 'failed' && m.error_title) {
        const err = document.createElement('div');
        err.className = 'msg-error';
        err.textContent = m.error_title;
        bubble.append(err);
      }
      row.append(bubble);
      thread.append(row);
    }
    if (stick) thread.scrollTop = thread.scrollHeight;
  }

  async function load() {
    if (loading) { again = true; return loading; }
    loading = (async () => {
      try {
        const r = await fetch(`/sandbox/${lineSel.value}/messages/?phone=${encodeURIComponent($('sim-phone').value)}`);
        const data = await r.json();
        if (!r.ok) { showError(data.message || `HTTP ${r.status}`); return; }
        showError('');
        phone = data.phone;
        render(data);
        await acknowledge(data.messages);
      } catch (err) { showError(err.message); }
    })();
    await loading;
    loading = null;
    if (again) { again = false; load(); }
  }

  function connect() {
    if (ws) { ws.onclose = null; ws.close(); }
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const sock = new WebSocket(`${proto}://${location.host}/ws/sandbox/${lineSel.value}/`);
    ws = sock;
    sock.onopen = () => { backoff = 500; setConn('live'); clearInterval(pollTimer); pollTimer = null; load(); };
    sock.onmessage = (msg) => {
      let frame;
      try { frame = JSON.parse(msg.data); } catch (e) { return; }
      const c = frame.payload && frame.payload.conversation;
      if (frame.event === 'refetch' || (c && c.customer_phone === phone)) load();
    };
    sock.onclose = (e) => {
      setConn('offline');
      if (e.code === 4404) return;
      if (!pollTimer) pollTimer = setInterval(load, 2000);
      setTimeout(() => { if (ws === sock) connect(); }, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }

  $('sim-compose').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('sim-text').value;
    if (!text.trim()) return;
    const button = e.target.querySelector('button');
    button.disabled = true;
    const id = `sim-${Date.now()}-${Math.random().toString(16).slice(2)}`;
    try {
      await postWebhook({ id, from: $('sim-phone').value, name: $('sim-name').value, text });
      $('sim-text').value = '';
      showError('');
      storeSetup();
      load();
      setTimeout(load, 700);
    } catch (err) { showError(err.message); }
    button.disabled = false;
    $('sim-text').focus();
  });
  $('sim-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('sim-compose').requestSubmit(); }
  });
  lineSel.addEventListener('change', () => { storeSetup(); checkLine(); connect(); load(); });
  $('sim-phone').addEventListener('change', () => { storeSetup(); load(); });
  $('sim-name').addEventListener('change', storeSetup);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') load(); });
  $('sim-setup').addEventListener('submit', (e) => e.preventDefault());
  checkLine();
  load();
  connect();
  document.body.dataset.ready = '1';
})();
