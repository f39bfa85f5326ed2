/* Conversa console notifications (issue 11): what needs the agent's attention — a new conversation
   in New, one transferred or assigned to her, one of hers reassigned away, a customer's reply in
   one of hers while she looks at another — as a toast, a short sound (mutable, remembered), the
   unread count in the tab's title, and a browser notification while the tab is hidden (permission
   asked once, on her first click). console.js hands every live event over as a `conversa:event`.
   Customer text is only ever set as text (toasts, notification bodies), never as HTML. */
(() => {
  'use strict';
  const body = document.body;
  const T = JSON.parse(document.getElementById('i18n').textContent);
  const me = Number(body.dataset.userId);
  const MUTED = 'conversa.sound.muted';
  const ASKED = 'conversa.notify.asked';
  const baseTitle = document.title;
  const store = (() => { try { return window.localStorage; } catch (err) { return null; } })();

  // ------------------------------------------------------------------ sound (mutable)
  const toggle = document.getElementById('sound-toggle');
  const muted = () => store !== null && store.getItem(MUTED) === '1';
  function showMuted() {
    if (!toggle) return;
    toggle.setAttribute('aria-pressed', String(!muted()));
    toggle.textContent = muted() ? '🔇' : '🔔';
    toggle.title = muted() ? T.sound_off : T.sound_on;
    toggle.setAttribute('aria-label', toggle.title);
  }
  if (toggle) {
    toggle.addEventListener('click', () => {
      if (store) store.setItem(MUTED, muted() ? '0' : '1');
      showMuted();
    });
    showMuted();
  }
  let audio = null;
  function beep() {
    body.dataset.lastSound = String(Date.now());  // (what the browser tests look for)
    if (muted()) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.08, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.25);
    } catch (err) { /* no audio device: the toast still says it */ }
  }

  // ------------------------------------------------------------------ browser notifications
  document.addEventListener('click', () => {
    if (!('Notification' in window) || Notification.permission !== 'default') return;
    if (store && store.getItem(ASKED) === '1') return;
    if (store) store.setItem(ASKED, '1');
    try { Notification.requestPermission(); } catch (err) { /* old browsers */ }
  }, { once: true });
  function systemNotification(text, tag) {
    if (!document.hidden || !('Notification' in window) || Notification.permission !== 'granted') return;
    try {
      const n = new Notification('Conversa', { body: text, tag });
      n.onclick = () => { window.focus(); n.close(); };
    } catch (err) { /* e.g. a service-worker-only platform */ }
  }

  // ------------------------------------------------------------------ the tab's title
  function unread() {
    const badge = document.getElementById('badge-mine');
    return badge && badge.classList.contains('unread') ? parseInt(badge.textContent, 10) || 0 : 0;
  }
  function showTitle() {
    const n = unread();
    document.title = n > 0 ? `(${n}) ${baseTitle}` : baseTitle;
  }
  new MutationObserver(showTitle).observe(document.getElementById('lists') || body,
    { childList: true, subtree: true, characterData: true });
  const badges = document.querySelector('.tabs');
  if (badges) new MutationObserver(showTitle).observe(badges, { childList: true, subtree: true, characterData: true, attributes: true });
  showTitle();

  // ------------------------------------------------------------------ what deserves attention
  const fill = (template, values) => template.replace(/\{(\w+)\}/g, (m, key) => (key in values ? values[key] : m));
  const nameOf = (c) => c.customer_name || c.customer_phone || c.customer_username || '';
  const openId = () => (body.dataset.openId ? Number(body.dataset.openId) : null);
  function toast(text) {
    const el = document.createElement('div');
    el.className = 'toast info';
    el.setAttribute('role', 'status');
    el.dataset.testid = 'notification';
    el.textContent = text;
    document.getElementById('toasts').append(el);
    setTimeout(() => el.remove(), 6000);
  }
  function attention(text, tag) {
    toast(text);
    beep();
    systemNotification(text, tag);
  }
  document.addEventListener('conversa:event', (e) => {
    const { type, payload } = e.detail || {};
    const c = payload && payload.conversation;
    if (!c) return;
    const name = nameOf(c);
    if (type === 'conversation.created' && c.status === 'new' && !c.agent) {
      attention(fill(T.notify_new, { name }), `new-${c.id}`);
    } else if (type === 'conversation.transferred' && c.agent === me && payload.by !== me) {
      const text = fill(T.notify_transfer, { by: payload.by_name || '', name });
      attention(payload.note ? `${text}: ${payload.note}` : text, `mine-${c.id}`);
    } else if (type === 'conversation.assigned' && c.agent === me) {
      attention(fill(T.notify_assigned, { name }), `mine-${c.id}`);
    } else if (type === 'conversation.transferred' && payload.from_agent === me && payload.by !== me
               && c.agent !== me && c.id !== openId()) {
      // (the open one: console.js already says it in the pane)
      attention(payload.to_agent ? fill(T.notify_reassigned, { by: payload.by_name || '', name, agent: payload.to_name || '' })
        : fill(T.notify_returned, { by: payload.by_name || '', name }), `mine-${c.id}`);
    } else if (type === 'message.created' && c.agent === me && payload.message && payload.message.direction === 'in'
               && (c.id !== openId() || document.hidden)) {
      const text = (payload.message.body || '').slice(0, 120);
      attention(fill(T.notify_reply, { name, text }), `reply-${c.id}`);
    }
  });
})();
