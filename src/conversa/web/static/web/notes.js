/* Conversa console: private notes and search (issue 11). In a note, "@" followed by letters
   suggests the campaign's colleagues (a listbox; arrows move, Enter or Tab puts "@username " in);
   a note that mentions the signed-in user shows her a toast (and a browser notification while the
   tab is hidden). The search box's "Clear search" empties it. Colleague names and note text are
   only ever set as text, never as HTML. */
(() => {
  'use strict';
  const body = document.body;
  const me = Number(body.dataset.userId);
  const strings = document.getElementById('notes-strings');
  const S = strings ? strings.dataset : {};

  // ------------------------------------------------------------------ @mention suggestions
  let active = -1;
  const choicesOf = (form) => {
    const script = form.querySelector('script[type="application/json"]');
    try { return script ? JSON.parse(script.textContent) : []; } catch (err) { return []; }
  };
  const tokenAt = (area) => {  // the "@word" being typed just before the caret, if any
    const before = area.value.slice(0, area.selectionStart);
    const m = /(^|[^\w@])@([\w.+-]*)$/.exec(before);
    return m ? { start: before.length - m[2].length - 1, word: m[2].toLowerCase() } : null;
  };
  function hide(list, area) {
    list.hidden = true;
    list.replaceChildren();
    active = -1;
    area.removeAttribute('aria-activedescendant');
  }
  function suggest(area) {
    const form = area.closest('form');
    const list = form.querySelector('[data-note-mentions]');
    const token = tokenAt(area);
    if (!token) { hide(list, area); return; }
    const found = choicesOf(form).filter((c) => c.username.toLowerCase().startsWith(token.word)
      || c.name.toLowerCase().split(/\s+/).some((part) => part.startsWith(token.word))).slice(0, 8);
    if (!found.length) { hide(list, area); return; }
    list.replaceChildren(...found.map((c, i) => {
      const li = document.createElement('li');
      li.id = `${list.id}-${i}`;
      li.setAttribute('role', 'option');
      li.dataset.username = c.username;
      li.dataset.testid = 'mention-option';
      li.textContent = `${c.name} (@${c.username})`;
      return li;
    }));
    list.hidden = false;
    select(list, area, 0);
  }
  function select(list, area, i) {
    const options = Array.from(list.children);
    active = (i + options.length) % options.length;
    options.forEach((o, j) => o.setAttribute('aria-selected', String(j === active)));
    area.setAttribute('aria-activedescendant', options[active].id);
  }
  function pick(area, username) {
    const token = tokenAt(area);
    if (!token) return;
    const rest = area.value.slice(area.selectionStart);
    area.value = `${area.value.slice(0, token.start)}@${username} ${rest}`;
    const caret = token.start + username.length + 2;
    area.setSelectionRange(caret, caret);
    hide(area.closest('form').querySelector('[data-note-mentions]'), area);
    area.focus();
  }
  document.addEventListener('input', (e) => { if (e.target.matches('[data-note-text]')) suggest(e.target); });
  document.addEventListener('keydown', (e) => {
    const area = e.target;
    if (!area.matches || !area.matches('[data-note-text]')) return;
    const list = area.closest('form').querySelector('[data-note-mentions]');
    if (list.hidden) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      select(list, area, active + (e.key === 'ArrowDown' ? 1 : -1));
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      pick(area, list.children[active].dataset.username);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      hide(list, area);
    }
  });
  document.addEventListener('mousedown', (e) => {
    const option = e.target.closest('[data-note-mentions] [role=option]');
    if (!option) return;
    e.preventDefault();  // keep the focus (and caret) in the note
    pick(option.closest('form').querySelector('[data-note-text]'), option.dataset.username);
  });
  body.addEventListener('conversa:noteAdded', (e) => {
    const form = e.target.closest && e.target.closest('[data-note-form]');
    if (!form) return;
    form.reset();
    const slot = form.querySelector('.form-error');
    if (slot) slot.textContent = '';
  });

  // ------------------------------------------------------------------ a mention tells her
  document.addEventListener('conversa:event', (e) => {
    const { type, payload } = e.detail || {};
    const note = payload && payload.note;
    if (type !== 'note.created' || !note || note.author === me || !(note.mentions || []).includes(me)) return;
    const c = payload.conversation || {};
    const text = (S.mention || '{by}: {text}')
      .replace('{by}', note.author_name || '')
      .replace('{name}', c.customer_name || c.customer_phone || c.customer_username || '')
      .replace('{text}', (note.body || '').slice(0, 120));
    const el = document.createElement('div');
    el.className = 'toast info';
    el.setAttribute('role', 'status');
    el.dataset.testid = 'mention-notification';
    el.textContent = text;
    const toasts = document.getElementById('toasts');
    if (toasts) toasts.append(el);
    setTimeout(() => el.remove(), 8000);
    if (document.hidden && 'Notification' in window && Notification.permission === 'granted') {
      try { new Notification('Conversa', { body: text, tag: `note-${note.id}` }); } catch (err) { /* none */ }
    }
  });

  // ------------------------------------------------------------------ search
  document.addEventListener('click', (e) => {
    if (!e.target.closest('[data-clear-search]')) return;
    const input = document.getElementById('conversation-search');
    if (input) { input.value = ''; input.focus(); }
    const results = document.getElementById('search-results');
    if (results) results.replaceChildren();
  });
})();
