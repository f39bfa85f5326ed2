/* Conversa agent console: htmx does the requests and swaps; this script wires the websocket,
   the coalesced refreshes, dialogs, the composer and the live clocks.
   Data from customers is only ever written with textContent (never innerHTML). */
(() => {
  'use strict';
  const body = document.body;
  const T = JSON.parse(document.getElementById('i18n').textContent);
  const me = Number(body.dataset.userId);
  const skew = (Date.parse(body.dataset.serverNow) || Date.now()) - Date.now();
  const now = () => Date.now() + skew;
  let openId = body.dataset.openId ? Number(body.dataset.openId) : null;
  let sideTab = 'contact';
  // Drafts of the composer, per conversation: in memory and in localStorage (keyed by user and
  // conversation), so switching conversations or reloading the page keeps what she was typing.
  const drafts = {
    key: (id) => `conversa:draft:${me}:${id}`,
    get(id) {
      try { return localStorage.getItem(this.key(id)) || ''; } catch (err) { return this.mem.get(id) || ''; }
    },
    set(id, text) {
      this.mem.set(id, text);
      try { if (text) localStorage.setItem(this.key(id), text); else localStorage.removeItem(this.key(id)); } catch (err) { /* private mode: memory only */ }
    },
    delete(id) { this.set(id, ''); },
    mem: new Map(),
  };
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // Refusals (4xx: a conversation someone else took, a form to correct, one no longer visible) are
  // expected: the agent is told through the conversa:error trigger, nothing is swapped, and htmx
  // does not log them as console errors. Server errors stay errors.
  htmx.config.responseHandling = [
    { code: '204', swap: false },
    { code: '[23]..', swap: true },
    { code: '4..', swap: false, error: false },
    { code: '5..', swap: false, error: true },
    { code: '...', swap: false },
  ];

  // ------------------------------------------------------------------ toasts
  function toast(message, kind = 'info') {
    const el = document.createElement('div');
    el.className = `toast ${kind}`;
    el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    el.textContent = message;
    $('#toasts').append(el);
    setTimeout(() => el.remove(), kind === 'error' ? 8000 : 5000);
  }
  // An error toast is about an attempt: once one succeeds (or the form it was about changes) it is stale.
  function clearErrorToasts() { for (const el of $$('#toasts .toast.error')) el.remove(); }

  // ------------------------------------------------------------------ connection problem
  // One persistent banner while requests cannot reach the server (the background refreshes keep
  // trying every few seconds: a toast each would pile up); gone at the first answer.
  function connectionProblem(on) {
    const el = $('#connection-problem');
    if (el) el.hidden = !on;
  }

  // ------------------------------------------------------------------ tabs
  function setTab(tab) {
    body.dataset.tab = tab;
    for (const btn of $$('[data-tab-button]')) {
      const selected = btn.dataset.tabButton === tab;
      btn.setAttribute('aria-selected', String(selected));
      btn.tabIndex = selected ? 0 : -1;
    }
  }
  document.addEventListener('click', (e) => {
    const btn = e.target.closest('[data-tab-button]');
    if (btn) setTab(btn.dataset.tabButton);
  });
  document.addEventListener('keydown', (e) => {
    const btn = e.target.closest && e.target.closest('[data-tab-button]');
    if (btn && (e.key === 'ArrowRight' || e.key === 'ArrowLeft')) {
      const tabs = $$('[data-tab-button]').map((b) => b.dataset.tabButton);  // New, Mine, Closed
      const next = tabs[(tabs.indexOf(btn.dataset.tabButton) + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
      setTab(next);
      $(`[data-tab-button="${next}"]`).focus();
    }
  });

  // ------------------------------------------------------------------ refreshes (coalesced)
  const pending = new Set();
  let flushTimer = null;
  let paneAfterDialog = false;
  document.addEventListener('close', (e) => {
    if (paneAfterDialog && e.target.closest && e.target.closest('#pane')) { paneAfterDialog = false; schedule('pane'); }
  }, true);
  // htmx.ajax rejects (without a reason) when its request is aborted or its target is gone, e.g. a
  // thread refresh whose pane was re-rendered meanwhile: superseded, not an error (errors that
  // matter reach the agent through htmx's events).
  function ajax(method, url, target) {
    return htmx.ajax(method, url, { source: target, target, swap: 'innerHTML' }).catch(() => {});
  }
  function schedule(what) {
    pending.add(what);
    if (!flushTimer) flushTimer = setTimeout(flush, 50);
  }
  function flush() {
    flushTimer = null;
    const what = new Set(pending);
    pending.clear();
    if (what.has('lists')) {
      // The server marks the open row (a swap's settle would drop a class added here) and shows it read.
      ajax('GET', openId ? `/console/lists/?open=${openId}` : '/console/lists/', '#lists');
    }
    if (!openId) return;
    // The pane does not show the open conversation yet (its load failed, e.g. the server was down):
    // load it rather than refresh a thread that is not there.
    if (!$(`#pane .conv[data-conversation-id="${openId}"]`)) { what.add('pane'); what.delete('thread'); }
    if (what.has('pane') && $('#pane dialog[open]')) {
      // Do not yank a dialog from under the agent: refresh when she closes it.
      paneAfterDialog = true;
      what.delete('pane');
      what.add('thread');
    }
    if (what.has('pane')) loadPane(openId, false);
    else if (what.has('thread')) refreshThread();
  }
  // A refresh re-reads the thread from its oldest shown message on (?from=), so pages the agent
  // loaded with "Load earlier messages" stay; one asked before such a page arrived is dropped
  // (htmx:beforeSwap) and asked again.
  function threadStart() {
    const start = $('#thread [data-thread-start]');
    return start ? start.dataset.threadStart : '';
  }
  function refreshThread() {
    const from = threadStart();
    const query = from ? `?from=${encodeURIComponent(from)}` : '';
    ajax('GET', `/console/c/${openId}/messages/${query}`, '#thread');
  }

  // ------------------------------------------------------------------ load earlier messages
  // The page before the first shown message replaces the button's row at the top of the thread;
  // the messages the agent was reading stay where they were on screen.
  document.addEventListener('click', async (e) => {
    const button = e.target.closest('[data-load-earlier]');
    if (!button || button.getAttribute('aria-busy') === 'true') return;
    const start = button.closest('[data-thread-start]');
    // Busy, not disabled: a disabled button would drop the keyboard focus.
    button.setAttribute('aria-busy', 'true');
    let html;
    try {
      const response = await fetch(button.dataset.loadEarlier, {
        credentials: 'same-origin', redirect: 'manual', headers: { 'HX-Request': 'true' },
      });
      if (!response.ok || response.type === 'opaqueredirect') throw new Error(String(response.status));
      html = await response.text();
    } catch (err) {
      button.removeAttribute('aria-busy');
      toast(T.error, 'error');
      return;
    }
    // A live refresh may have replaced the thread meanwhile: the page still belongs on top of it
    // when the refreshed thread starts at the same message.
    button.removeAttribute('aria-busy');
    const thread = $('#thread');
    const current = thread && $('[data-thread-start]', thread);
    if (!current || current.dataset.threadStart !== start.dataset.threadStart) return;
    const hadFocus = [button, current.querySelector('[data-load-earlier]'), document.body]
      .includes(document.activeElement);
    const fromBottom = thread.scrollHeight - thread.scrollTop;
    const page = document.createElement('template');
    page.innerHTML = html;  // server-rendered and escaped, as every htmx swap
    const added = Array.from(page.content.children);
    current.replaceWith(page.content);
    thread.scrollTop = thread.scrollHeight - fromBottom;
    for (const el of added) { htmx.process(el); localTimes(el); }
    if (hadFocus) {
      const next = $('[data-load-earlier]', thread);
      (next || thread).focus({ preventScroll: true });
    }
  });

  function loadPane(id, push) {
    openId = id;
    body.dataset.openId = String(id);
    if (push && location.pathname !== `/c/${id}/`) history.pushState({ id }, '', `/c/${id}/`);
    markSelected();
    return ajax('GET', `/console/c/${id}/`, '#pane');
  }
  function clearPane() {
    openId = null;
    announced = null;
    body.dataset.openId = '';
    const pane = $('#pane');
    pane.replaceChildren();
    const div = document.createElement('div');
    div.className = 'empty-pane';
    const p = document.createElement('p');
    p.textContent = T.empty_pane;
    div.append(p);
    pane.append(div);
    if (location.pathname !== '/') history.pushState({}, '', '/');
    markSelected();
  }
  function markSelected() {
    for (const row of $$('.row')) {
      const sel = openId !== null && Number(row.dataset.conversationId) === openId;
      row.classList.toggle('selected', sel);
      const link = $('.row-open', row);
      if (link) { if (sel) link.setAttribute('aria-current', 'true'); else link.removeAttribute('aria-current'); }
    }
  }
  window.addEventListener('popstate', () => {
    const m = location.pathname.match(/^\/c\/(\d+)\/$/);
    if (m) loadPane(Number(m[1]), false); else clearPane();
  });
  document.addEventListener('click', (e) => {
    const link = e.target.closest('[data-open-conversation]');
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    focusAfterPane = { id: Number(link.dataset.openConversation), to: 'pane-if-lost' };
    loadPane(Number(link.dataset.openConversation), true);
  });

  // ------------------------------------------------------------------ focus and announcements
  // A keyboard or screen-reader agent keeps her place: after a capture the composer has the focus,
  // after closing (or transferring) the next conversation of the list; a polite live region says
  // which conversation the pane now shows. On a phone the list and the pane take turns on screen
  // (console.css): opening one moves the focus into the pane, the back control returns it to the row.
  let focusAfterPane = null;
  let announced = null;
  let listFocus = null;
  const onScreen = (el) => Boolean(el && el.getClientRects().length);
  function focusLost() {
    const active = document.activeElement;
    return !active || active === body || !onScreen(active);
  }
  function paneShown() {
    const conv = $('#pane .conv');
    if (!conv) return;
    const id = Number(conv.dataset.conversationId);
    if (announced !== id) {
      announced = id;
      const announcer = $('#announcer');
      const name = $('#conv-name', conv);
      if (announcer) announcer.textContent = `${announcer.dataset.loaded}: ${name ? name.textContent.trim() : ''}`;
    }
    const want = focusAfterPane;
    if (!want || want.id !== id) return;
    focusAfterPane = null;
    if ($('dialog[open]')) return;
    if (want.to === 'composer') {
      // Not when she is already typing somewhere else (a search field of the list, say).
      const active = document.activeElement;
      if (active && !conv.contains(active) && active.matches('input, textarea, select')) return;
      const target = $('#composer-text', conv) || $('[data-testid=template-picker] select', conv) || $('#pane');
      if (document.activeElement !== target) target.focus();
    } else if (focusLost()) {
      $('#pane').focus({ preventScroll: true });
    }
  }
  function focusNextConversation(id) {
    if (!onScreen($('.inbox'))) {  // a phone: the way back to the list
      const back = $('#back-to-list');
      if (back) back.focus();
      return;
    }
    const tab = body.dataset.tab;
    const rows = $$(`#lists [data-panel="${tab}"] .row[data-conversation-id]`);
    const i = rows.findIndex((r) => Number(r.dataset.conversationId) === id);
    const next = i >= 0 ? rows[i + 1] || rows[i - 1] : rows[0];
    const link = next && $('.row-open', next);
    (link || $(`[data-tab-button="${tab}"]`)).focus();
  }
  // A refresh of the lists replaces their rows: the focused one keeps the focus.
  function rememberListFocus() {
    const active = document.activeElement;
    const row = active && $('#lists').contains(active) ? active.closest('.row') : null;
    listFocus = row ? { id: row.dataset.conversationId, capture: active.matches('.capture') } : null;
  }
  function restoreListFocus() {
    const was = listFocus;
    listFocus = null;
    if (!was || !focusLost()) return;
    const row = $(`#lists [data-panel="${body.dataset.tab}"] .row[data-conversation-id="${was.id}"]`);
    const el = row && ((was.capture && $('.capture', row)) || $('.row-open', row));
    if (el) el.focus({ preventScroll: true });
  }
  document.addEventListener('click', (e) => {
    if (!e.target.closest('[data-back-to-list]')) return;
    const id = openId;
    clearPane();
    const row = $(`#lists [data-panel="${body.dataset.tab}"] .row[data-conversation-id="${id}"] .row-open`);
    (row || $(`[data-tab-button="${body.dataset.tab}"]`)).focus();
  });

  // ------------------------------------------------------------------ server-sent triggers
  // htmx fires HX-Trigger events on the element that made the request. A live update may have
  // removed that element meanwhile (a captured row, a re-rendered pane): then deliver them on
  // <body>, so "open the conversation you captured" or "your message was sent" is never lost.
  document.addEventListener('htmx:beforeSend', (e) => {
    const elt = e.detail.elt;
    const xhr = e.detail.xhr;
    let delivered = false;
    const onLoad = (ev) => { if (ev.detail.xhr === xhr) delivered = elt.isConnected; };
    elt.addEventListener('htmx:beforeOnLoad', onLoad);
    xhr.addEventListener('loadend', () => {
      elt.removeEventListener('htmx:beforeOnLoad', onLoad);
      if (delivered) return;
      const raw = xhr.getResponseHeader('HX-Trigger');
      if (!raw) return;
      let events;
      try { events = JSON.parse(raw); } catch (err) { return; }
      for (const [name, detail] of Object.entries(events)) {
        const d = detail !== null && typeof detail === 'object' ? detail : { value: detail };
        body.dispatchEvent(new CustomEvent(name, { detail: d, bubbles: true }));
      }
    });
  });
  body.addEventListener('conversa:error', (e) => {
    const d = e.detail || {};
    toast(d.message || T.error, 'error');
    const form = e.target.closest && e.target.closest('form');
    const slot = form && $('.form-error', form);
    if (slot) slot.textContent = d.message || '';
    if (d.code === 'conflict' || d.code === 'not_found') {
      const row = e.target.closest && e.target.closest('.row');
      if (row) row.remove();
      schedule('lists');
      if (openId && !form) schedule('pane');
    }
    if (d.code === 'window_closed') schedule('pane');
  });
  body.addEventListener('conversa:lists', () => schedule('lists'));
  body.addEventListener('conversa:thread', () => schedule('thread'));
  body.addEventListener('conversa:pane', () => schedule('pane'));
  body.addEventListener('conversa:toast', (e) => toast(e.detail.message));
  body.addEventListener('conversa:closeDialogs', (e) => {
    // Closed with a disposition or transferred: her place is the next conversation of the list.
    const form = e.target.closest && e.target.closest('[data-close-form], [data-transfer-form]');
    for (const d of $$('dialog[open]')) d.close();
    if (form && openId) focusNextConversation(openId);
  });
  body.addEventListener('conversa:open', (e) => {
    focusAfterPane = { id: Number(e.detail.id), to: 'composer' };  // captured or started: she writes next
    if (e.detail.tab) setTab(e.detail.tab);
    loadPane(Number(e.detail.id), true);
  });
  body.addEventListener('conversa:left', (e) => { if (Number(e.detail.id) === openId) clearPane(); });
  body.addEventListener('conversa:sent', (e) => {
    // Quick replies and templates (htmx forms). The composer has its own outbox and is never reset here.
    const form = e.target === body ? null : e.target.closest('form');
    for (const d of $$('dialog.inline-dialog[open]')) d.close();
    if (form && form.matches('[data-template-form]') && !form.closest('dialog')) schedule('pane');
    schedule('thread');
  });

  document.addEventListener('htmx:afterRequest', (e) => {
    const xhr = e.detail.xhr;
    if (xhr && xhr.status) connectionProblem(false);  // the server answered
    const ok = e.detail.successful && xhr && xhr.status < 400;  // refusals are not errors to htmx (beforeSwap)
    const form = e.detail.elt && e.detail.elt.closest && e.detail.elt.closest('form');
    if (ok && e.detail.elt.matches && e.detail.elt.matches('form, form *')) clearErrorToasts();
    if (form && ok) {
      for (const input of $$('[data-client-id]', form)) input.value = uuid();
      const slot = $('.form-error', form);
      if (slot) slot.textContent = '';
    }
  });
  document.addEventListener('htmx:sendError', (e) => {
    connectionProblem(true);
    const form = e.detail.elt && e.detail.elt.closest && e.detail.elt.closest('form');
    const slot = form && $('.form-error', form);
    if (slot) slot.textContent = T.network_error;  // what the agent did was not sent
  });
  document.addEventListener('htmx:responseError', (e) => {
    if (e.detail.xhr.status >= 500) toast(T.error, 'error');
  });
  document.addEventListener('htmx:beforeSwap', (e) => {
    const status = e.detail.xhr.status;
    if (status >= 400 && status < 500) {
      // Expected refusals (a conversation someone else took, a form to correct, one no longer
      // visible): the agent is told through the conversa:error trigger; nothing to swap and no
      // error for htmx to log in the console.
      e.detail.isError = false;
      e.detail.shouldSwap = false;
      if (e.detail.target && e.detail.target.id === 'pane' && (status === 404 || status === 403)) clearPane();
      return;
    }
    if (e.detail.target.id === 'lists' && e.detail.xhr.status === 200) {
      const sig = e.detail.xhr.getResponseHeader('X-Lists-Sig');
      if (sig && sig === e.detail.target.dataset.sig) { e.detail.shouldSwap = false; return; }
      if (sig) e.detail.target.dataset.sig = sig;
      rememberListFocus();
    }
    if (e.detail.target.id === 'pane') {
      const shown = $('#pane .conv');
      const path = (e.detail.pathInfo && e.detail.pathInfo.requestPath) || '';
      if (shown && $('#pane dialog[open]') && path.startsWith(`/console/c/${shown.dataset.conversationId}/`)) {
        // A refresh of the conversation the agent is using a dialog of: apply it after the dialog.
        e.detail.shouldSwap = false;
        paneAfterDialog = true;
        return;
      }
      const ta = $('#composer-text');
      const conv = $('.conv');
      if (ta && conv) drafts.set(Number(conv.dataset.conversationId), ta.value);
      const active = document.activeElement;
      focusBeforeSwap = active && active.closest && active.closest('[hx-preserve]')
        ? { elt: active, start: active.selectionStart, end: active.selectionEnd } : null;
    }
    if (e.detail.target.id === 'thread') {
      const t = e.detail.target;
      const asked = new URL(e.detail.xhr.responseURL || location.href, location.href).searchParams.get('from') || '';
      if (e.detail.xhr.status === 200 && asked !== threadStart()) {
        e.detail.shouldSwap = false;
        schedule('thread');
        return;
      }
      t.dataset.stick = String(t.scrollHeight - t.scrollTop - t.clientHeight < 40);
      // A live refresh must not drop the keyboard focus of "Load earlier messages".
      const active = document.activeElement;
      t.dataset.focusEarlier = String(Boolean(active && t.contains(active) && active.matches('[data-load-earlier]')));
    }
  });
  document.addEventListener('htmx:afterSwap', (e) => {
    const target = e.detail.target;
    // htmx wires the new nodes' hx- attributes only when they settle (a timer later), so a click
    // in between (a quick agent, a loaded machine) did nothing: a Capture lost. Wire them now.
    if (target.isConnected) htmx.process(target);
    if (target.id === 'pane') {
      const ta = $('#composer-text');
      // A composer kept across the swap (hx-preserve) still has its text: only a fresh one gets the draft.
      if (ta && !ta.value && openId && drafts.get(openId)) ta.value = drafts.get(openId);
      keepFocus();
      paneShown();
      renderOutbox();
      fillClientIds(target);
      setSideTab(sideTab);
      const thread = $('#thread');
      if (thread) thread.scrollTop = thread.scrollHeight;
    }
    if (target.id === 'thread') {
      renderOutbox();
      if (target.dataset.focusEarlier === 'true') ($('[data-load-earlier]', target) || target).focus({ preventScroll: true });
    }
    if (target.id === 'pane' || target.id === 'thread') markRead();
    if (target.id === 'thread' && target.dataset.stick !== 'false') target.scrollTop = target.scrollHeight;
    if (target.id === 'lists') { markSelected(); restoreListFocus(); }
    if (target.id === 'dialog-body') {
      const dlg = $('#dialog');
      if (!dlg.open) dlg.showModal();
      fillClientIds(dlg);
      const first = $('input:not([type=hidden]):not([disabled]), select, textarea', dlg);
      if (first) first.focus();
      initNewConversation(dlg);
    }
    localTimes(target);
    tick();
  });
  // A preserved element that had the focus keeps it, caret included, in the same task as the swap:
  // no keystroke can fall on <body> in between (browsers without Element.moveBefore blur on a move).
  let focusBeforeSwap = null;
  function keepFocus() {
    const was = focusBeforeSwap;
    focusBeforeSwap = null;
    if (!was || !was.elt.isConnected || document.activeElement === was.elt) return;
    was.elt.focus({ preventScroll: true });
    if (typeof was.start === 'number' && was.elt.setSelectionRange) {
      try { was.elt.setSelectionRange(was.start, was.end); } catch (err) { /* not a text field */ }
    }
  }
  function fillClientIds(root) {
    for (const input of $$('[data-client-id]', root)) if (!input.value) input.value = uuid();
  }

  // ------------------------------------------------------------------ dialogs
  document.addEventListener('click', (e) => {
    const opener = e.target.closest('[data-show-dialog]');
    if (opener) {
      const dlg = document.getElementById(opener.dataset.showDialog);
      if (dlg) {
        fillClientIds(dlg);
        dlg.showModal();
        const first = $('input:not([type=hidden]), select', dlg);
        if (first) first.focus();
      }
    }
    const closer = e.target.closest('[data-close-dialog]');
    if (closer) closer.closest('dialog').close();
  });
  $('#dialog').addEventListener('close', () => $('#dialog-body').replaceChildren());

  // ------------------------------------------------------------------ composer
  // Freshly swapped-in htmx forms are wired when they settle (a few ms later). A submit in that
  // gap must not fall back to a native POST: hold it and resubmit once htmx has the form.
  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (form.matches('[data-composer]')) {
      e.preventDefault();
      submitComposer(form);
      return;
    }
    if (!form.matches('[hx-post]') || e.defaultPrevented) return;
    e.preventDefault();
    const tries = Number(form.dataset.submitRetries || 0);
    if (tries >= 10) return;
    form.dataset.submitRetries = String(tries + 1);
    setTimeout(() => { if (form.isConnected) form.requestSubmit(); }, 50);
  });
  // ------------------------------------------------------------------ quick replies in the composer
  // A quick reply (from the dialog, or "/title" typed in the composer) goes into the composer,
  // filled in for this customer by the server: the agent edits it and Enter sends it.
  function quickReplies() {
    const data = $('#quick-replies');
    try { return data ? JSON.parse(data.textContent) : []; } catch (err) { return []; }
  }
  function putInComposer(text, { replace }) {
    const ta = $('#composer-text');
    if (!ta) return;
    if (replace) ta.value = text;
    else ta.setRangeText(text, ta.selectionStart, ta.selectionEnd, 'end');
    ta.dispatchEvent(new Event('input', { bubbles: true }));  // the draft keeps it
    ta.focus();
    ta.setSelectionRange(ta.value.length, ta.value.length);
  }
  document.addEventListener('click', (e) => {
    const item = e.target.closest('[data-qr-insert]');
    if (!item) return;
    const reply = quickReplies().find((q) => String(q.id) === item.dataset.qrInsert);
    const dlg = item.closest('dialog');
    if (dlg) dlg.close();
    if (reply) { putInComposer(reply.text, { replace: false }); attachQuickReplyFile(reply); }
  });
  // A quick reply with a file: the file goes with what the agent sends (the server takes it from
  // the quick reply), shown as the composer's attachment; choosing another file or Remove drops it.
  function attachQuickReplyFile(reply) {
    const ta = $('#composer-text');
    const form = ta && ta.form;
    if (!form || !reply.file) return;
    $('[data-qr-file]', form).value = String(reply.id);
    $('[data-file-input]', form).value = '';
    const box = $('[data-attachment]', form);
    $('[data-attachment-name]', box).textContent = reply.file;
    box.hidden = false;
  }
  let suggestActive = 0;
  function suggestions() {
    const ta = $('#composer-text');
    const m = ta && ta.value.match(/^\/(\S*)$/);
    if (!m) return null;
    const q = m[1].toLowerCase();
    return quickReplies().filter((r) => r.title.toLowerCase().includes(q)).slice(0, 8);
  }
  function renderSuggest() {
    const list = $('[data-qr-suggest]');
    const ta = $('#composer-text');
    if (!list || !ta) return;
    const found = suggestions();
    list.replaceChildren();
    if (!found || !found.length) {
      list.hidden = true;
      ta.removeAttribute('aria-activedescendant');
      return;
    }
    suggestActive = Math.min(suggestActive, found.length - 1);
    found.forEach((r, i) => {
      const li = document.createElement('li');
      li.id = `${list.id}-${r.id}`;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', String(i === suggestActive));
      li.dataset.qrPick = String(r.id);
      const title = document.createElement('strong');
      title.textContent = r.title;
      const text = document.createElement('span');
      text.className = 'muted small';
      text.textContent = ` ${r.text}`;
      li.append(title, text);
      list.append(li);
    });
    list.hidden = false;
    // A textarea's role (textbox) takes aria-activedescendant but not aria-expanded (axe).
    ta.setAttribute('aria-activedescendant', `${list.id}-${found[suggestActive].id}`);
  }
  function pickSuggestion(id) {
    const reply = quickReplies().find((q) => String(q.id) === String(id));
    if (reply) { putInComposer(reply.text, { replace: true }); attachQuickReplyFile(reply); }
    renderSuggest();
  }
  document.addEventListener('input', (e) => {
    if (e.target.id !== 'composer-text') return;
    suggestActive = 0;
    renderSuggest();
  });
  document.addEventListener('mousedown', (e) => {
    const option = e.target.closest('[data-qr-pick]');
    if (!option) return;
    e.preventDefault();  // the composer keeps the focus
    pickSuggestion(option.dataset.qrPick);
  });
  // Captured before the composer's own Enter (send): while suggestions show, Enter and Tab pick one.
  document.addEventListener('keydown', (e) => {
    if (e.target.id !== 'composer-text' || e.isComposing) return;
    const list = $('[data-qr-suggest]');
    if (!list || list.hidden) return;
    const found = suggestions() || [];
    if (!found.length) return;
    let handled = true;
    if (e.key === 'ArrowDown') suggestActive = (suggestActive + 1) % found.length;
    else if (e.key === 'ArrowUp') suggestActive = (suggestActive - 1 + found.length) % found.length;
    else if ((e.key === 'Enter' && !e.shiftKey) || e.key === 'Tab') { pickSuggestion(found[suggestActive].id); return stop(e); }
    else if (e.key === 'Escape') { list.hidden = true; e.target.removeAttribute('aria-activedescendant'); return stop(e); }
    else handled = false;
    if (handled) { renderSuggest(); stop(e); }
  }, true);
  function stop(e) { e.preventDefault(); e.stopImmediatePropagation(); }

  document.addEventListener('keydown', (e) => {
    if (e.target.id !== 'composer-text' || e.key !== 'Enter' || e.shiftKey || e.isComposing) return;
    e.preventDefault();
    e.target.form.requestSubmit();
  });

  // ------------------------------------------------------------------ outbox
  // What the agent sends is taken from the composer at once (the composer is free for the next
  // message) and kept here until the thread shows it: "sending", then queued or "not sent" with
  // Retry. Sent one at a time, in order; a retry reuses the message's client_message_id, so the
  // server stores and sends it once however often it arrives (docs/decisions.md #7).
  const csrfToken = (() => {
    try { return JSON.parse(body.getAttribute('hx-headers'))['X-CSRFToken']; } catch (err) { return ''; }
  })();
  const outbox = [];
  let outboxBusy = false;
  function submitComposer(form) {
    const ta = $('textarea', form);
    const file = $('[data-file-input]', form);
    const qrFile = $('[data-qr-file]', form);
    const fileName = file && file.files.length ? file.files[0].name
      : (qrFile && qrFile.value ? $('[data-attachment-name]', form).textContent : '');
    if (!ta.value.trim() && !fileName) return;
    const idInput = $('[data-client-id]', form);
    if (!idInput.value) idInput.value = uuid();
    outbox.push({
      key: idInput.value, conversationId: Number(form.dataset.conversationId), url: form.dataset.sendUrl,
      data: new FormData(form), text: ta.value.trim(), fileName, state: 'sending', error: '',
    });
    form.reset();
    if (qrFile) qrFile.value = '';
    idInput.value = uuid();
    $('[data-attachment]', form).hidden = true;
    drafts.delete(Number(form.dataset.conversationId));
    renderOutbox();
    const thread = $('#thread');
    if (thread) thread.scrollTop = thread.scrollHeight;
    pumpOutbox();
  }
  // Showing the agent her own conversation's thread marks it read: a POST (an action that tells
  // her other screens), never a side effect of the GET that rendered it.
  function markRead() {
    const conv = $('#pane .conv');
    if (!conv || Number(conv.dataset.agentId) !== me || conv.dataset.status === 'closed') return;
    fetch(`/console/c/${conv.dataset.conversationId}/read/`, {
      method: 'POST', credentials: 'same-origin', redirect: 'manual',
      headers: { 'X-CSRFToken': csrfToken, 'HX-Request': 'true' },
    }).catch(() => {});
  }
  async function errorOf(response) {
    let d = {};
    try { d = JSON.parse(response.headers.get('HX-Trigger') || '{}')['conversa:error'] || {}; } catch (err) { d = {}; }
    return { message: d.message || T.error, code: d.code || '' };
  }
  async function pumpOutbox() {
    if (outboxBusy) return;
    const entry = outbox.find((x) => x.state === 'sending');
    if (!entry) return;
    outboxBusy = true;
    try {
      // redirect: manual — an expired session answers with a redirect to the login page, not a send.
      const response = await fetch(entry.url, {
        method: 'POST', body: entry.data, credentials: 'same-origin', redirect: 'manual',
        headers: { 'X-CSRFToken': csrfToken, 'HX-Request': 'true' },
      });
      if (response.ok && response.type !== 'opaqueredirect') {
        entry.state = 'sent';
      } else {
        const err = response.type === 'opaqueredirect' ? { message: T.error, code: '' } : await errorOf(response);
        entry.state = 'failed';
        entry.error = err.message;
        if (err.code === 'window_closed' || err.code === 'conflict' || err.code === 'not_found') schedule('pane');
      }
    } catch (err) {
      entry.state = 'failed';
      entry.error = T.network_error;
    }
    outboxBusy = false;
    if (entry.conversationId === openId) schedule('thread');
    schedule('lists');
    renderOutbox();
    pumpOutbox();
  }
  function renderOutbox() {
    for (const el of $$('[data-outbox]')) el.remove();
    const thread = $('#thread');
    if (!thread || openId === null) return;
    const stick = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
    const shown = new Set($$('[data-client-message-id]', thread).map((el) => el.dataset.clientMessageId));
    for (let i = outbox.length - 1; i >= 0; i--) {
      if (outbox[i].conversationId === openId && shown.has(outbox[i].key)) outbox.splice(i, 1);
    }
    const tpl = $('#outbox-message');
    for (const entry of outbox) {
      if (entry.conversationId !== openId) continue;
      const el = tpl.content.firstElementChild.cloneNode(true);
      el.dataset.state = entry.state;
      el.dataset.outboxKey = entry.key;
      $('[data-outbox-text]', el).textContent = entry.text;
      const file = $('[data-outbox-file]', el);
      file.textContent = entry.fileName;
      file.hidden = !entry.fileName;
      $('[data-outbox-error]', el).textContent = entry.error;
      for (const part of $$('[data-when]', el)) part.hidden = part.dataset.when !== entry.state;
      thread.append(el);
    }
    if (stick) thread.scrollTop = thread.scrollHeight;
  }
  document.addEventListener('click', (e) => {
    const button = e.target.closest('[data-outbox-retry], [data-outbox-discard]');
    if (!button) return;
    const key = button.closest('[data-outbox]').dataset.outboxKey;
    const i = outbox.findIndex((x) => x.key === key);
    if (i < 0) return;
    if (button.matches('[data-outbox-discard]')) outbox.splice(i, 1);
    else { outbox[i].state = 'sending'; outbox[i].error = ''; }
    renderOutbox();
    pumpOutbox();
  });
  window.addEventListener('beforeunload', (e) => {
    if (outbox.some((x) => x.state === 'sending')) e.preventDefault();
  });
  document.addEventListener('change', (e) => {
    if (e.target.matches('[data-file-input]')) {
      const form = e.target.form;
      $('[data-qr-file]', form).value = '';
      const box = $('[data-attachment]', form);
      box.hidden = !e.target.files.length;
      $('[data-attachment-name]', box).textContent = e.target.files.length ? e.target.files[0].name : '';
    }
  });
  document.addEventListener('click', (e) => {
    if (e.target.closest('[data-clear-file]')) {
      const form = e.target.closest('form');
      $('[data-file-input]', form).value = '';
      $('[data-qr-file]', form).value = '';
      $('[data-attachment]', form).hidden = true;
    }
  });
  document.addEventListener('input', (e) => {
    if (e.target.id === 'composer-text' && openId) drafts.set(openId, e.target.value);
    if (e.target.matches('[data-qr-search]')) {
      const q = e.target.value.trim().toLowerCase();
      for (const li of $$('[data-qr-title]', e.target.closest('dialog'))) li.hidden = !li.dataset.qrTitle.includes(q);
    }
  });

  // ------------------------------------------------------------------ templates (params + live preview)
  function templateParts(form) {
    return { select: $('[data-template-select]', form), params: $('[data-param-fields]', form), preview: $('[data-preview]', form) };
  }
  function renderPreview(form) {
    const { select, params, preview } = templateParts(form);
    const opt = select.selectedOptions[0];
    const tpl = opt && opt.value ? opt.dataset.body : '';
    const values = $$('input', params).map((i) => i.value);
    const names = opt && opt.value && opt.dataset.paramNames ? opt.dataset.paramNames.split(',') : [];
    preview.textContent = tpl.replace(/\{\{\s*(\d+)\s*\}\}/g, (m, n) => values[Number(n) - 1] || m)
      .replace(/\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}/g, (m, name) => values[names.indexOf(name)] || m);
  }
  function buildParams(form) {
    const { select, params } = templateParts(form);
    const opt = select.selectedOptions[0];
    const count = opt && opt.value ? Number(opt.dataset.params) : 0;
    // Named parameters ({{first_name}}) are labelled with their names, in the body's order.
    const names = opt && opt.value && opt.dataset.paramNames ? opt.dataset.paramNames.split(',') : [];
    // What the admin said each parameter is, and its value from the contact where she mapped a field.
    let specs = [];
    try { specs = opt && opt.value ? JSON.parse(opt.dataset.paramSpecs || '[]') : []; } catch (err) { specs = []; }
    params.replaceChildren();
    for (let i = 1; i <= count; i++) {
      const spec = specs[i - 1] || {};
      const placeholder = `{{${names[i - 1] || i}}}`;
      const label = document.createElement('label');
      label.textContent = spec.label ? `${spec.label} ${placeholder} ` : `${placeholder} `;
      const input = document.createElement('input');
      input.name = 'params';
      input.required = true;
      input.autocomplete = 'off';
      input.value = spec.value || '';
      input.setAttribute('aria-label', spec.label || (names[i - 1] ? `${T.parameter} ${names[i - 1]}` : `${T.parameter} ${i}`));
      label.append(input);
      params.append(label);
    }
    renderPreview(form);
  }
  document.addEventListener('change', (e) => {
    const form = e.target.closest('[data-template-form]');
    if (!form) return;
    if (e.target.matches('[data-template-select]')) buildParams(form);
    if (e.target.matches('[data-line-select]')) initNewConversation(form);
    if (e.target.matches('[data-create-contact]')) toggleCreateFields(form);
  });
  document.addEventListener('input', (e) => {
    const form = e.target.closest('[data-template-form]');
    if (form && e.target.closest('[data-param-fields]')) renderPreview(form);
  });

  // ------------------------------------------------------------------ new conversation
  function initNewConversation(root) {
    const form = root.matches && root.matches('[data-new-conversation]') ? root : $('[data-new-conversation]', root);
    if (!form) return;
    const line = $('[data-line-select]', form).value;
    const select = $('[data-template-select]', form);
    for (const opt of $$('option[data-line]', select)) {
      const other = opt.dataset.line !== line;
      opt.hidden = other;
      opt.disabled = other;
    }
    if (select.selectedOptions[0] && select.selectedOptions[0].disabled) select.value = '';
    buildParams(form);
    toggleCreateFields(form);
    lookupContact(form);
  }
  function toggleCreateFields(form) {
    const on = $('[data-create-contact]', form).checked;
    const line = $('[data-line-select]', form).value;
    $('[data-create-fields]', form).hidden = !on;
    $('input[name=first_name]', form).required = on;
    for (const group of $$('[data-for-line]', form)) {
      const active = on && group.dataset.forLine === line;
      group.hidden = !active;
      for (const input of $$('input, select', group)) input.disabled = !active;
    }
  }
  // The number is checked by the server with the send's own rules: invalid (the send's message),
  // an existing contact (no contact to create), or a new one (created with the fields below).
  let lookupTimer = null;
  let lookupSeq = 0;
  function lookupContact(form) {
    clearTimeout(lookupTimer);
    const seq = ++lookupSeq;
    const out = $('[data-contact-lookup]', form);
    const offer = $('fieldset.create-contact', form);
    const box = $('[data-create-contact]', form);
    const raw = $('[data-phone]', form).value.trim();
    const line = $('[data-line-select]', form).value;
    if (raw.replace(/\D/g, '').length < 8 || !line) {
      out.textContent = '';
      offer.hidden = false;
      return;
    }
    lookupTimer = setTimeout(async () => {
      let data;
      try {
        const r = await fetch(`/console/phone/?line=${encodeURIComponent(line)}&phone=${encodeURIComponent(raw)}`,
          { credentials: 'same-origin', headers: { Accept: 'application/json' } });
        if (!r.ok) throw new Error(String(r.status));
        data = await r.json();
      } catch (err) { if (seq === lookupSeq) out.textContent = ''; return; }
      if (seq !== lookupSeq) return;  // the number changed meanwhile
      if (!data.valid) {
        out.textContent = data.message;
        offer.hidden = true;
        box.checked = false;
      } else if (data.contact) {
        out.textContent = `${T.existing_contact}: ${data.contact.name} (${data.contact.phone})`;
        offer.hidden = true;
        box.checked = false;
      } else {
        out.textContent = T.no_contact;
        offer.hidden = false;
        box.checked = true;
      }
      toggleCreateFields(form);
    }, 300);
  }
  document.addEventListener('input', (e) => {
    if (e.target.matches('[data-phone]')) lookupContact(e.target.closest('form'));
  });

  // ------------------------------------------------------------------ form errors
  // A form's error is about what was sent: editing the form puts it (and its toast) away.
  function editedForm(e) {
    const form = e.target.closest && e.target.closest('form');
    const slot = form && $('.form-error', form);
    if (slot && slot.textContent) { slot.textContent = ''; clearErrorToasts(); }
  }
  document.addEventListener('input', editedForm, true);
  document.addEventListener('change', editedForm, true);

  // ------------------------------------------------------------------ close with disposition
  function localMinute(d) {  // a datetime-local value: the agent's local time, to the minute
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }
  document.addEventListener('change', (e) => {
    const form = e.target.closest('[data-close-form]');
    if (!form) return;
    if (e.target.name === 'disposition') {
      // A follow-up is in the future: the picker offers no past dates.
      for (const picker of $$('[data-follow-up]', form)) picker.min = localMinute(new Date(now()));
      for (const section of $$('[data-for-option]', form)) {
        const active = section.dataset.forOption === e.target.value;
        section.hidden = !active;
        for (const input of $$('input, select, textarea', section)) input.disabled = !active;
      }
      $('input[name=follow_up_at]', form).value = '';
    }
  });
  document.addEventListener('input', (e) => {
    if (e.target.matches('[data-follow-up]')) {
      const form = e.target.closest('form');
      const d = new Date(e.target.value);
      $('input[name=follow_up_at]', form).value = Number.isNaN(d.getTime()) ? '' : d.toISOString();
    }
  });

  // ------------------------------------------------------------------ side panel
  function setSideTab(tab) {
    sideTab = tab;
    for (const b of $$('[data-side-tab]')) {
      b.setAttribute('aria-selected', String(b.dataset.sideTab === tab));
      b.tabIndex = b.dataset.sideTab === tab ? 0 : -1;  // one Tab stop; arrows move between tabs
    }
    for (const p of $$('[data-side-panel]')) p.hidden = p.dataset.sidePanel !== tab;
  }
  document.addEventListener('keydown', (e) => {
    const tab = e.target.closest && e.target.closest('[data-side-tab]');
    if (!tab || !['ArrowRight', 'ArrowLeft', 'Home', 'End'].includes(e.key)) return;
    e.preventDefault();
    const tabs = $$('[data-side-tab]', tab.parentElement);
    const i = tabs.indexOf(tab);
    const next = e.key === 'Home' ? tabs[0] : e.key === 'End' ? tabs[tabs.length - 1]
      : tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    setSideTab(next.dataset.sideTab);
    next.focus();
  });
  document.addEventListener('click', (e) => {
    const tab = e.target.closest('[data-side-tab]');
    if (tab) setSideTab(tab.dataset.sideTab);
    if (e.target.closest('[data-show-identify]')) {
      const box = $('[data-identify]');
      box.hidden = false;
      $('input[name=first_name]', box).focus();
    }
    const use = e.target.closest('[data-use-contact]');
    if (use) {
      const form = $('[data-identify-existing]');
      $('input[name=contact]', form).value = use.dataset.useContact;
      form.requestSubmit();
    }
  });
  let searchTimer = null;
  document.addEventListener('input', (e) => {
    if (!e.target.matches('[data-contact-search]')) return;
    clearTimeout(searchTimer);
    const input = e.target;
    searchTimer = setTimeout(async () => {
      const list = $('[data-search-results]', input.closest('.identify'));
      const q = input.value.trim();
      list.replaceChildren();
      if (q.length < 2) return;
      try {
        const r = await fetch(`/api/v1/campaigns/${input.dataset.contactSearch}/contacts/?q=${encodeURIComponent(q)}`,
          { credentials: 'same-origin', headers: { Accept: 'application/json' } });
        const data = await r.json();
        const results = data.results || [];
        if (!results.length) {
          const li = document.createElement('li');
          li.className = 'muted';
          li.textContent = T.no_results;
          list.append(li);
        }
        for (const c of results.slice(0, 10)) {
          const li = document.createElement('li');
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'result';
          b.dataset.useContact = String(c.id);
          const name = document.createElement('strong');
          name.textContent = c.full_name || c.phone;
          const sub = document.createElement('span');
          sub.className = 'muted small';
          sub.textContent = ` ${c.phone}${c.email ? ' · ' + c.email : ''}`;
          b.append(name, sub);
          li.append(b);
          list.append(li);
        }
      } catch (err) { /* offline: the form below still works */ }
    }, 250);
  });

  // ------------------------------------------------------------------ clocks
  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m`;
    const h = Math.floor(m / 60);
    if (h < 24) return `${h}h ${m % 60}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }
  let windowRefreshFor = null;
  function tick() {
    const t = now();
    for (const el of $$('time[data-since]')) {
      const since = Date.parse(el.dataset.since);
      if (Number.isNaN(since)) continue;
      const d = t - since;
      el.textContent = duration(d);
      el.classList.toggle('late', d > 5 * 60 * 1000);
    }
    for (const el of $$('time[data-window-expires]')) {
      const left = Date.parse(el.dataset.windowExpires) - t;
      el.textContent = `${duration(left)} ${T.left}`;
      el.closest('.window').classList.toggle('ending', left < 60 * 60 * 1000);
      if (left <= 0 && windowRefreshFor !== openId) { windowRefreshFor = openId; schedule('pane'); }
    }
  }
  function localTimes(root) {
    for (const el of $$('time[data-local-time]', root)) {
      const d = new Date(el.getAttribute('datetime'));
      if (!Number.isNaN(d.getTime())) el.textContent = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    }
    for (const el of $$('time[data-local-datetime]', root)) {
      const d = new Date(el.getAttribute('datetime'));
      if (!Number.isNaN(d.getTime())) el.textContent = d.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
    }
  }
  setInterval(tick, 1000);

  // ------------------------------------------------------------------ websocket (with catch-up)
  let lastId = null;
  let backoff = 500;
  let pollTimer = null;
  function setConn(state) {
    const el = $('#conn');
    el.dataset.state = state;
    $('.conn-label', el).textContent = state === 'live' ? T.live : state === 'offline' ? T.offline : T.connecting;
  }
  function startPolling() {
    if (pollTimer) return;
    pollTimer = setInterval(() => { schedule('lists'); schedule('thread'); }, 4000);
  }
  function stopPolling() { clearInterval(pollTimer); pollTimer = null; }
  function onEvent(type, payload) {
    // notify.js (toasts, sound, title, browser notifications) listens to every live event.
    document.dispatchEvent(new CustomEvent('conversa:event', { detail: { type, payload } }));
    if (type === 'agent.status') {  // the header's status control (another tab, logout, the offline sweep)
      if (payload.agent === me && $('#agent-status')) {
        htmx.ajax('GET', '/console/status/', { target: '#agent-status', swap: 'outerHTML' });
      }
      return;
    }
    const c = payload && payload.conversation;
    if (type === 'refetch' || !c) { schedule('lists'); schedule('pane'); return; }
    if (type === 'conversation.read') { schedule('lists'); return; }  // only the unread badges change
    // A private note: the thread shows it (notes.js tells a mentioned colleague).
    if (type.startsWith('note.')) { if (c.id === openId) schedule('thread'); return; }
    if (type.startsWith('message.')) {
      if (c.id === openId) schedule('thread');
      if (type === 'message.created') schedule('lists');
      // The customer wrote: the 24-hour window is open again, the composer replaces the templates.
      const m = payload.message;
      if (type === 'message.created' && c.id === openId && m && m.direction === 'in'
          && $('#pane .conv[data-window-open="0"]')) schedule('pane');
      return;
    }
    if (c.status !== 'new' || c.agent) {
      const row = document.getElementById(`row-new-${c.id}`);
      if (row) row.remove();
      $('#badge-new').textContent = String($$('[data-testid=list-new] .row').length);
    }
    if ((c.agent !== me || c.status === 'closed') && type !== 'conversation.created') {
      const row = document.getElementById(`row-mine-${c.id}`);
      if (row) row.remove();
    }
    if (type === 'conversation.transferred' && c.id === openId && payload.from_agent === me
        && payload.by !== me && c.agent !== me) {
      // Taken out of her hands (a supervisor's reassignment): say who and where, not "not found".
      const text = (payload.to_agent ? T.reassigned_to : T.returned_to_inbox)
        .replace('{by}', payload.by_name || '').replace('{agent}', payload.to_name || '');
      clearPane();
      const notice = $('#pane .empty-pane p');
      if (notice) { notice.textContent = text; notice.dataset.testid = 'pane-notice'; }
      toast(text);
      schedule('lists');
      return;
    }
    schedule('lists');
    if (c.id === openId) schedule('pane');
  }
  function connect() {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    // frames=batch: what piled up for us comes as one array frame (realtime/consumers.py).
    const query = lastId !== null ? `?frames=batch&last_event_id=${lastId}` : '?frames=batch';
    let ws;
    try { ws = new WebSocket(`${proto}://${location.host}/ws/agent/${query}`); } catch (err) { retry(); return; }
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onmessage = (msg) => {
      let data;
      try { data = JSON.parse(msg.data); } catch (err) { return; }
      for (const frame of Array.isArray(data) ? data : [data]) onFrame(frame);
    };
    function onFrame(frame) {
      if (!frame || typeof frame !== 'object') return;
      if (frame.event === 'hello') {
        const first = lastId === null;
        if (first && frame.payload) lastId = frame.payload.last_event_id;
        backoff = 500;
        setConn('live');
        connectionProblem(false);
        stopPolling();
        // What changed between the page render (or the last socket) and this one: the log replay
        // follows, and one refresh also covers an event that committed out of id order in the gap.
        schedule('lists'); if (openId) schedule('thread');
        return;
      }
      if (typeof frame.id === 'number' && (lastId === null || frame.id > lastId)) lastId = frame.id;
      onEvent(frame.event, frame.payload || {});
    }
    ws.onclose = (e) => {
      if (e.code === 4401) { location.href = `/login/?next=${encodeURIComponent(location.pathname)}`; return; }
      setConn(opened ? 'offline' : 'connecting');
      startPolling();
      if (e.code === 4403) return; // no WhatsApp access: nothing to stream
      retry();
    };
  }
  function retry() {
    setTimeout(connect, backoff + Math.random() * 250);
    backoff = Math.min(backoff * 2, 15000);
  }

  // ------------------------------------------------------------------ start
  setTab(body.dataset.tab || 'new');
  if (openId) loadPane(openId, false);
  localTimes(document);
  tick();
  connect();
  // htmx (loaded first) wires the page on DOMContentLoaded unless the document is already
  // complete; deferred scripts run while it is "interactive", before that event, so "ready" waits
  // for the same event (listeners run in order: htmx's first) — only then do hx- forms work.
  const ready = () => { body.dataset.ready = '1'; };
  if (document.readyState === 'complete') ready(); else document.addEventListener('DOMContentLoaded', ready);
})();
