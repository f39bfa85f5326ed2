/* Live dashboard: refetch the snapshot partial when the agent socket reports a relevant event
   (debounced), and poll as a fallback while the socket is down (and slowly even when it is up,
   so a missed event never leaves the numbers stale for long). */
(() => {
  'use strict';
  const body = document.body;
  const url = body.dataset.liveUrl;
  const target = document.getElementById('live');
  const conn = document.getElementById('conn');
  if (!url || !target) return;
  const strings = JSON.parse((document.getElementById('i18n') || {}).textContent || '{}');
  const RELEVANT = /^(conversation\.|agent\.status|message\.created)/;
  let timer = null;
  let inFlight = false;
  let lastId = null;
  let ws = null;
  let backoff = 1000;
  let live = false;

  function setConn(state) {
    if (!conn) return;
    conn.dataset.state = state;
    const label = conn.querySelector('.conn-label');
    if (label) label.textContent = strings[state === 'live' ? 'live' : state === 'offline' ? 'offline' : 'connecting'] || '';
  }

  async function refetch() {
    if (inFlight) { schedule(500); return; }
    inFlight = true;
    try {
      const res = await fetch(url, { headers: { 'HX-Request': 'true' }, credentials: 'same-origin' });
      if (res.ok) target.innerHTML = await res.text();  // server-rendered, escaped by Django
    } catch (err) { /* keep the last numbers; the next tick retries */ }
    inFlight = false;
  }

  function schedule(delay = 300) {
    clearTimeout(timer);
    timer = setTimeout(refetch, delay);
  }

  function connect() {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    // frames=batch: what piled up for us comes as one array frame (realtime/consumers.py).
    const query = lastId !== null ? `?frames=batch&last_event_id=${lastId}` : '?frames=batch';
    try { ws = new WebSocket(`${proto}://${location.host}/ws/agent/${query}`); } catch (err) { retry(); return; }
    ws.onopen = () => { live = true; backoff = 1000; setConn('live'); schedule(0); };
    ws.onmessage = (msg) => {
      let data;
      try { data = JSON.parse(msg.data); } catch (err) { return; }
      for (const frame of Array.isArray(data) ? data : [data]) {
        if (!frame || typeof frame !== 'object') continue;
        if (frame.event === 'hello') { if (frame.payload && lastId === null) lastId = frame.payload.last_event_id; continue; }
        if (typeof frame.id === 'number') lastId = frame.id;
        if (frame.event === 'refetch' || RELEVANT.test(frame.event || '')) schedule();
      }
    };
    ws.onclose = (ev) => {
      live = false;
      setConn('offline');
      if (ev.code === 4401 || ev.code === 4403) return;  // not allowed: polling alone keeps going
      retry();
    };
  }

  function retry() {
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 30000);
  }

  // Fallback polling: every 10 s while the socket is down, every 60 s while it is up.
  let ticks = 0;
  setInterval(() => {
    ticks += 1;
    if (!live || ticks % 6 === 0) refetch();
  }, 10000);
  const ping = setInterval(() => { if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: 'ping' })); }, 25000);
  window.addEventListener('pagehide', () => clearInterval(ping));
  connect();
})();
