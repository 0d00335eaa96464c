// llmscope dashboard. Reads only the JSON API: /api/stats, /api/calls,
// /api/calls/{id}, /api/compare. Numbers shown in the overview tiles are also exposed raw
// in data-value attributes (tests compare them with /api/stats).
'use strict';
(function () {
  const SAMPLE = 2000;   // calls fetched for the distributions (without their texts)
  const RECENT = 50;     // rows in the recent calls table
  const EVERY = 5000;    // live refresh period, ms
  const $ = (s, root) => (root || document).querySelector(s);
  const main = $('#main');
  const statusEl = $('#status');

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  const nf = (d) => new Intl.NumberFormat('en-US', { maximumFractionDigits: d, minimumFractionDigits: 0 });
  const fmt0 = nf(0), fmt1 = nf(1), fmt2 = nf(2);
  const ms = (v) => (v >= 100 ? fmt0 : fmt1).format(v);
  // usd shows dollars with significant digits: $2.40, $0.0123, $0.00000024.
  const usd = (v) => {
    if (v === 0) return '$0';
    if (Math.abs(v) >= 1) return '$' + v.toFixed(2);
    const r = Number(v.toPrecision(2));
    return '$' + r.toFixed(Math.min(20, Math.max(2, 1 - Math.floor(Math.log10(Math.abs(r))))));
  };

  // ---- filters -------------------------------------------------------------
  const fSince = $('#f-since'), fExp = $('#f-experiment'), fRun = $('#f-run'), fModel = $('#f-model'), fLive = $('#f-live');
  function filters(withModel) {
    const q = new URLSearchParams();
    q.set('since', fSince.value);
    if (fExp.value.trim()) q.set('experiment', fExp.value.trim());
    if (fRun.value.trim()) q.set('run', fRun.value.trim());
    if (withModel && fModel.value) q.set('model', fModel.value);
    return q;
  }
  const windowMinutes = () => Number(fSince.selectedOptions[0].dataset.minutes);
  $('#filters').addEventListener('submit', (e) => { e.preventDefault(); refresh(); });
  for (const x of [fSince, fModel, fExp, fRun]) x.addEventListener('change', () => refresh());
  let timer = null;
  function schedule() {
    clearInterval(timer);
    timer = fLive.checked ? setInterval(() => { if (!document.hidden) refresh(); }, EVERY) : null;
  }
  fLive.addEventListener('change', schedule);

  async function getJSON(url) {
    const r = await fetch(url, { headers: { Accept: 'application/json' } });
    const body = await r.json().catch(() => null);
    if (!r.ok) throw new Error((body && body.error && body.error.message) || (url + ': HTTP ' + r.status));
    return body;
  }

  // ---- tiles ---------------------------------------------------------------
  function tile(key, value, text, note) {
    const t = $('[data-tile="' + key + '"]');
    const v = $('.v', t);
    v.dataset.value = String(value);
    v.textContent = text;
    const n = $('.n', t);
    if (n) n.textContent = note || '';
  }
  function renderTiles(s) {
    const t = s.totals, mins = windowMinutes();
    tile('calls', t.calls, fmt0.format(t.calls));
    const rpm = t.calls / mins;
    tile('rpm', rpm, fmt2.format(rpm));
    const er = t.calls ? t.errors / t.calls : 0;
    tile('error_rate', er, fmt1.format(er * 100) + ' %', t.errors + ' of ' + t.calls + ' failed');
    tile('p50', t.latency_p50_ms, ms(t.latency_p50_ms) + ' ms');
    tile('p95', t.latency_p95_ms, ms(t.latency_p95_ms) + ' ms');
    tile('p99', t.latency_p99_ms, ms(t.latency_p99_ms) + ' ms');
    tile('ttft_p50', t.ttft_p50_ms, t.ttft_p50_ms ? ms(t.ttft_p50_ms) + ' ms' : '–');
    const tpm = t.total_tokens / mins;
    tile('tpm', tpm, fmt1.format(tpm));
    tile('cost', t.cost_usd, usd(t.cost_usd), t.cost_unknown ? t.cost_unknown + ' call(s) with unknown price not included' : 'priced calls only');
    $('#window-label').textContent = '(' + fSince.selectedOptions[0].textContent + ')';
  }

  // ---- per-model table and model filter --------------------------------------
  function renderModels(s) {
    const body = $('#models tbody');
    body.replaceChildren();
    for (const g of s.groups) {
      const tr = document.createElement('tr');
      tr.dataset.model = g.key;
      const th = el('th', g.key || '(none)'); th.scope = 'row'; tr.append(th);
      for (const v of [fmt0.format(g.calls), fmt0.format(g.errors), fmt0.format(g.input_tokens), fmt0.format(g.output_tokens),
        usd(g.cost_usd) + (g.cost_unknown ? ' +' + g.cost_unknown + ' unpriced' : ''), ms(g.latency_p50_ms), ms(g.latency_p95_ms),
        g.ttft_p50_ms ? ms(g.ttft_p50_ms) : '–']) tr.append(el('td', v));
      body.append(tr);
    }
    if (!s.groups.length) { const tr = document.createElement('tr'); const td = el('td', 'no calls in this window', 'empty'); td.colSpan = 9; tr.append(td); body.append(tr); }
  }
  function renderProviders(s) {
    const body = $('#providers tbody');
    body.replaceChildren();
    for (const g of s.groups) {
      const k = g.keys || {};
      const tr = document.createElement('tr');
      tr.dataset.provider = k.provider || '';
      tr.dataset.upstream = k.upstream || '';
      const th = el('th', k.provider || '(none)'); th.scope = 'row'; tr.append(th);
      for (const v of [k.upstream || '–', fmt0.format(g.calls), fmt0.format(g.errors), fmt0.format(g.input_tokens), fmt0.format(g.output_tokens),
        usd(g.cost_usd) + (g.cost_unknown ? ' +' + g.cost_unknown + ' unpriced' : ''), ms(g.latency_p50_ms), ms(g.latency_p95_ms)]) tr.append(el('td', v));
      body.append(tr);
    }
    if (!s.groups.length) { const tr = document.createElement('tr'); const td = el('td', 'no calls in this window', 'empty'); td.colSpan = 9; tr.append(td); body.append(tr); }
  }
  // Budgets: shown when the gateway enforces some (GET /api/budgets).
  let budgetsOff = false;
  async function refreshBudgets() {
    if (budgetsOff) return;
    let b;
    try { b = await getJSON('/api/budgets'); } catch (_) { budgetsOff = true; return; } // no budgets configured
    const sec = $('#budgets'), body = $('#budget-table tbody');
    sec.hidden = !b.budgets.length;
    body.replaceChildren();
    for (const x of b.budgets) {
      const tr = document.createElement('tr');
      tr.dataset.budget = x.budget; tr.dataset.subject = x.subject;
      const th = el('th', x.budget); th.scope = 'row'; tr.append(th);
      const when = (t) => t ? new Date(t).toISOString().replace('T', ' ').slice(0, 16) + ' UTC' : '–';
      for (const v of [x.kind + ' ' + (x.subject || '(all)'), x.period, usd(x.spent_usd), usd(x.limit_usd),
        (100 * x.share).toFixed(1) + ' %', x.rate_usd_per_hour ? usd(x.rate_usd_per_hour) : '–', when(x.exhausts_at), when(x.resets_at)]) tr.append(el('td', v));
      if (x.share >= 1) tr.classList.add('bad');
      body.append(tr);
    }
  }
  function renderModelOptions(s) {
    const want = fModel.value;
    const keys = s.groups.map((g) => g.key).filter(Boolean);
    if (want && !keys.includes(want)) keys.push(want);
    keys.sort();
    const have = [...fModel.options].slice(1).map((o) => o.value);
    if (have.join('\n') === keys.join('\n')) return;
    fModel.replaceChildren(el('option', 'all models'));
    fModel.options[0].value = '';
    for (const k of keys) { const o = el('option', k); o.value = k; fModel.append(o); }
    fModel.value = want;
  }
  function renderDatalists(calls) {
    for (const [id, field, input] of [['#dl-experiment', 'experiment', fExp], ['#dl-run', 'run', fRun]]) {
      const vals = [...new Set(calls.map((c) => c[field]).filter(Boolean))].sort();
      if (input.value && !vals.includes(input.value)) vals.push(input.value);
      $(id).replaceChildren(...vals.map((v) => { const o = document.createElement('option'); o.value = v; return o; }));
    }
  }

  // ---- recent calls --------------------------------------------------------
  function renderCalls(calls) {
    const body = $('#calls tbody');
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.id : null;
    body.replaceChildren();
    for (const c of calls.slice(0, RECENT)) {
      const tr = document.createElement('tr');
      tr.tabIndex = 0;
      tr.dataset.id = c.id;
      const failed = c.error_type !== '' || c.status >= 400;
      if (failed) tr.className = 'failed';
      tr.setAttribute('aria-label', 'call ' + c.id + ', ' + (c.request_model || c.response_model) + ', status ' + c.status + '; press Enter for details');
      const cells = [new Date(c.start).toLocaleString(), c.operation, c.request_model || c.response_model,
        c.status + (c.error_type && String(c.error_type) !== String(c.status) ? ' ' + c.error_type : ''), c.stream ? 'yes' : 'no',
        fmt0.format(c.usage.input_tokens), fmt0.format(c.usage.output_tokens), ms(c.duration_ms),
        c.ttft_ms ? ms(c.ttft_ms) : '–', c.cost ? usd(c.cost.total_usd) : 'unknown'];
      for (const v of cells) tr.append(el('td', v));
      body.append(tr);
      if (c.id === focused) tr.focus();
    }
    if (!calls.length) { const tr = document.createElement('tr'); const td = el('td', 'no calls in this window', 'empty'); td.colSpan = 10; tr.append(td); body.append(tr); }
  }
  const callsBody = $('#calls tbody');
  callsBody.addEventListener('click', (e) => { const tr = e.target.closest('tr[data-id]'); if (tr) openCall(tr.dataset.id, tr); });
  callsBody.addEventListener('keydown', (e) => {
    const tr = e.target.closest('tr[data-id]');
    if (!tr) return;
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openCall(tr.dataset.id, tr); }
    else if (e.key === 'ArrowDown' && tr.nextElementSibling) { e.preventDefault(); tr.nextElementSibling.focus(); }
    else if (e.key === 'ArrowUp' && tr.previousElementSibling) { e.preventDefault(); tr.previousElementSibling.focus(); }
  });

  // ---- drill-down ----------------------------------------------------------
  const dialog = $('#drill');
  let returnFocus = null;
  dialog.addEventListener('close', () => { const id = returnFocus; returnFocus = null; const tr = id && $('#calls tr[data-id="' + CSS.escape(id) + '"]'); if (tr) tr.focus(); });
  function dl(pairs) {
    const d = document.createElement('dl');
    for (const [k, v] of pairs) { if (v === undefined || v === null || v === '') continue; d.append(el('dt', k), el('dd', v)); }
    return d;
  }
  // pretty indents a JSON text; other text is shown as it is.
  function pretty(s) { try { return JSON.stringify(JSON.parse(s), null, 2); } catch (_) { return s; } }
  function block(title, content) { const s = document.createElement('section'); s.append(el('h3', title), content); return s; }
  async function openCall(id, tr) {
    returnFocus = id;
    const body = $('#drill-body');
    $('#drill-title').textContent = 'Call ' + id;
    dialog.dataset.callId = '';
    body.replaceChildren(el('p', 'loading…'));
    if (!dialog.open) dialog.showModal();
    body.focus(); // not the Close button: a stray Enter must not close it
    let c;
    try { c = await getJSON('/api/calls/' + encodeURIComponent(id)); } catch (err) { body.replaceChildren(el('p', String(err.message || err))); return; }
    const u = c.usage;
    const params = Object.fromEntries(Object.entries(c.params || {}).filter(([, v]) => v !== null && v !== ''));
    const parts = [
      block('Call', dl([['id', c.id], ['trace id', c.trace_id], ['start', new Date(c.start).toISOString()], ['operation', c.operation],
        ['provider', c.provider], ['endpoint', c.endpoint], ['request model', c.request_model], ['response model', c.response_model],
        ['stream', c.stream ? 'yes' : 'no'], ['status', c.status], ['error', c.error_type],
        ['upstream error', [c.error_code, c.error_message].filter(Boolean).join(': ')], ['finish reason', c.finish_reason],
        ['response id', c.response_id], ['system fingerprint', c.system_fingerprint], ['chunks', c.chunks || ''],
        ['upstream', c.upstream], ['attempts', c.attempts || ''], ['service tier', c.service_tier], ['deployment', c.deployment],
        ['experiment', c.experiment], ['run', c.run], ['user', c.user], ['session', c.session],
        ['tags', c.tags && Object.keys(c.tags).length ? Object.entries(c.tags).map(([k, v]) => k + '=' + v).join(', ') : '']])),
      block('Timing', dl([['latency', ms(c.duration_ms) + ' ms'], ['time to first token', c.ttft_ms ? ms(c.ttft_ms) + ' ms' : '–'],
        ['llmscope overhead', c.overhead_ms ? ms(c.overhead_ms) + ' ms' : '']])),
      block('Usage', dl([['input tokens', u.input_tokens], ['cached input tokens', u.cached_input_tokens],
        ['cache write tokens', u.cache_creation_input_tokens || ''], ['output tokens', u.output_tokens],
        ['reasoning tokens', u.reasoning_tokens], ['total tokens', u.total_tokens], ['source', u.source]])),
      block('Cost', c.cost ? dl([['input', usd(c.cost.input_usd)], ['output', usd(c.cost.output_usd)], ['total', usd(c.cost.total_usd)], ['price source', c.cost.price_source]])
        : el('p', 'unknown: no price for this model')),
      block('Parameters', Object.keys(params).length ? el('pre', JSON.stringify(params, null, 2)) : el('p', 'none recorded')),
    ];
    if (c.tries && c.tries.length) {
      parts.push(block('Attempts', el('pre', c.tries.map((t, i) => (i + 1) + '. ' + t.upstream + '  ' + t.outcome +
        (t.status ? ' ' + t.status : '') + '  ' + ms(t.duration_ms) + ' ms' + (t.retried ? '  (retried)' : '')).join('\n'))));
    }
    if (c.input) parts.push(block('Input', el('pre', c.input)));
    if (c.tools) parts.push(block('Tools', el('pre', pretty(c.tools))));
    if (c.output) parts.push(block('Output', el('pre', c.output)));
    if (c.tool_calls) parts.push(block('Tool calls', el('pre', pretty(c.tool_calls))));
    if (!c.input && !c.output) parts.push(el('p', 'Input and output were not captured for this call.', 'sub'));
    body.replaceChildren(...parts);
    dialog.dataset.callId = c.id;
    body.focus();
  }

  // ---- charts --------------------------------------------------------------
  const C = window.Chart;
  if (C) {
    C.defaults.animation = false;
    C.defaults.maintainAspectRatio = false;
    C.defaults.font.family = getComputedStyle(document.body).fontFamily;
  }
  const charts = {};
  // markers draws vertical percentile lines on a histogram; opts.markers is
  // [{label, value}] in data units, opts.bins = {min, width}.
  const markerPlugin = {
    id: 'markers',
    afterDatasetsDraw(chart, _args, opts) {
      const m = opts && opts.list, b = opts && opts.bins;
      if (!m || !b || !b.width) return;
      const x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx;
      const p0 = x.getPixelForValue(0), p1 = b.count > 1 ? x.getPixelForValue(1) : p0 + area.width;
      const colors = ['#2e7d32', '#ef6c00', '#c62828'];
      ctx.save();
      m.forEach((mk, i) => {
        const px = p0 + ((mk.value - b.min) / b.width - 0.5) * (p1 - p0);
        ctx.strokeStyle = colors[i % colors.length]; ctx.lineWidth = 2; ctx.setLineDash([5, 3]);
        ctx.beginPath(); ctx.moveTo(px, area.top); ctx.lineTo(px, area.bottom); ctx.stroke();
        ctx.setLineDash([]); ctx.fillStyle = colors[i % colors.length]; ctx.font = '11px sans-serif';
        const label = mk.label + ' ' + ms(mk.value), w = ctx.measureText(label).width;
        const tx = px + 3 + w > area.right ? px - 3 - w : px + 3;
        ctx.fillStyle = 'rgba(255,255,255,.85)'; ctx.fillRect(tx - 1, area.top + 2 + 13 * i, w + 2, 12);
        ctx.fillStyle = colors[i % colors.length];
        ctx.fillText(label, tx, area.top + 12 + 13 * i);
      });
      ctx.restore();
    },
  };
  function chart(id, type, data, options) {
    if (!C) return;
    if (charts[id]) {
      charts[id].data = data;
      Object.assign(charts[id].options.plugins, options.plugins || {});
      charts[id].update('none');
      return;
    }
    charts[id] = new C($('#' + id), {
      type, data, plugins: [markerPlugin],
      options: Object.assign({ responsive: true, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }, options),
    });
  }
  // histogram bins values into at most n bins of equal width.
  function histogram(series, n) {
    const all = series.flat();
    if (!all.length) return { labels: [], counts: series.map(() => []), min: 0, width: 0, count: 0 };
    let min = Math.min(...all), max = Math.max(...all);
    if (max === min) { max = min + 1; }
    const nb = Math.max(1, Math.min(n, all.length));
    let width = (max - min) / nb;
    const digits = width >= 10 ? 0 : width >= 1 ? 1 : 2;
    const counts = series.map((vals) => {
      const c = new Array(nb).fill(0);
      for (const v of vals) c[Math.min(nb - 1, Math.floor((v - min) / width))]++;
      return c;
    });
    const labels = [];
    for (let i = 0; i < nb; i++) labels.push((min + i * width).toFixed(digits) + '–' + (min + (i + 1) * width).toFixed(digits));
    return { labels, counts, min, width, count: nb };
  }
  function renderCharts(calls, s, more) {
    const mins = windowMinutes(), now = Date.now(), from = now - mins * 60000;
    // requests over time: 30 buckets across the window.
    const nb = 30, bw = (mins * 60000) / nb, ok = new Array(nb).fill(0), bad = new Array(nb).fill(0), labels = [];
    for (let i = 0; i < nb; i++) {
      const d = new Date(from + i * bw);
      labels.push(mins > 1440 ? d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    }
    for (const c of calls) {
      const i = Math.floor((Date.parse(c.start) - from) / bw);
      if (i < 0 || i >= nb) continue;
      (c.error_type !== '' || c.status >= 400 ? bad : ok)[i]++;
    }
    chart('c-time', 'bar', { labels, datasets: [
      { label: 'ok', data: ok, backgroundColor: '#1f6feb' },
      { label: 'errors', data: bad, backgroundColor: '#c62828' }] },
    { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } });

    const t = s.totals;
    const lat = histogram([calls.map((c) => c.duration_ms)], 20);
    chart('c-latency', 'bar', { labels: lat.labels, datasets: [{ label: 'calls', data: lat.counts[0], backgroundColor: '#5c6bc0' }] },
      { plugins: { legend: { display: false }, markers: { bins: lat, list: t.calls ? [
        { label: 'p50', value: t.latency_p50_ms }, { label: 'p95', value: t.latency_p95_ms }, { label: 'p99', value: t.latency_p99_ms }] : [] } } });

    const streamed = calls.filter((c) => c.stream && c.ttft_ms > 0).map((c) => c.ttft_ms);
    const tt = histogram([streamed], 20);
    chart('c-ttft', 'bar', { labels: tt.labels, datasets: [{ label: 'streamed calls', data: tt.counts[0], backgroundColor: '#00897b' }] },
      { plugins: { legend: { display: false }, markers: { bins: tt, list: t.ttft_p50_ms ? [
        { label: 'p50', value: t.ttft_p50_ms }, { label: 'p95', value: t.ttft_p95_ms }] : [] } } });

    const tk = histogram([calls.map((c) => c.usage.input_tokens), calls.map((c) => c.usage.output_tokens)], 16);
    chart('c-tokens', 'bar', { labels: tk.labels, datasets: [
      { label: 'input tokens', data: tk.counts[0], backgroundColor: '#1f6feb' },
      { label: 'output tokens', data: tk.counts[1], backgroundColor: '#f9a825' }] }, { plugins: { markers: { list: [] } } });

    const capped = more || calls.length >= SAMPLE;
    $('#sample-label').textContent = capped ? '(latest ' + calls.length + ' of ' + t.calls + ' calls; percentile lines over all ' + t.calls + ')'
      : '(' + calls.length + ' calls)';
  }

  // ---- comparison ----------------------------------------------------------
  // Pick 2–6 experiments or runs seen in recent calls; /api/compare gives
  // their figures, latency and TTFT samples, and each against the first
  // picked (the baseline) with a Mann–Whitney U test.
  const CMP_MAX = 6;
  const CMP_COLORS = ['#1f6feb', '#ef6c00', '#2e7d32', '#8e24aa', '#c62828', '#00897b'];
  const cmpBy = $('#cmp-by'), cmpValues = $('#cmp-values'), cmpMsg = $('#cmp-msg'), cmpOut = $('#cmp-out');
  let picked = [];          // in the order picked: picked[0] is the baseline
  let seen = { experiment: [], run: [] };
  let cmpActive = null;     // the query of the comparison shown, re-run on refresh
  const cmpCharts = {};
  function renderCompareChoices(calls) {
    for (const k of ['experiment', 'run']) seen[k] = [...new Set(calls.map((c) => c[k]).filter(Boolean))].sort();
    drawChoices();
  }
  function drawChoices() {
    const by = cmpBy.value;
    const vals = [...seen[by]];
    for (const v of picked) if (!vals.includes(v)) vals.push(v);
    const have = [...cmpValues.querySelectorAll('input')].map((i) => i.value);
    if (have.join('\n') !== vals.join('\n')) {
      const legend = cmpValues.querySelector('legend');
      legend.textContent = by + 's seen in recent calls';
      cmpValues.replaceChildren(legend);
      for (const v of vals) {
        const id = 'cmp-v-' + by + '-' + vals.indexOf(v);
        const box = document.createElement('input');
        box.type = 'checkbox'; box.id = id; box.value = v; box.name = 'value';
        const l = el('label'); l.htmlFor = id; l.append(box, ' ' + v);
        cmpValues.append(l);
      }
      if (!vals.length) cmpValues.append(el('span', 'no ' + by + 's in the calls of this window', 'sub'));
    }
    for (const box of cmpValues.querySelectorAll('input')) {
      box.checked = picked.includes(box.value);
      box.disabled = !box.checked && picked.length >= CMP_MAX;
      const i = picked.indexOf(box.value);
      box.parentElement.dataset.order = i < 0 ? '' : i === 0 ? 'baseline' : String(i + 1);
    }
    if (!cmpActive) cmpMsg.textContent = picked.length < 2 ? 'pick at least two ' + by + 's to compare (' + picked.length + ' picked)'
      : 'baseline: ' + picked[0] + '; press Compare';
  }
  cmpValues.addEventListener('change', (e) => {
    const v = e.target.value;
    picked = e.target.checked ? [...picked.filter((x) => x !== v), v] : picked.filter((x) => x !== v);
    drawChoices();
  });
  cmpBy.addEventListener('change', () => { picked = []; clearCompare(); drawChoices(); });
  $('#cmp-clear').addEventListener('click', () => { picked = []; clearCompare(); drawChoices(); });
  $('#cmp-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (picked.length < 2) { cmpMsg.textContent = 'pick at least two ' + cmpBy.value + 's to compare (' + picked.length + ' picked)'; return; }
    cmpActive = true;
    runCompare();
  });
  function clearCompare() {
    cmpActive = null;
    for (const k of Object.keys(cmpCharts)) { cmpCharts[k].destroy(); delete cmpCharts[k]; }
    cmpOut.replaceChildren();
    cmpOut.dataset.query = '';
    lastCompare = '';
  }
  let cmpSeq = 0, lastCompare = '';
  async function runCompare() {
    if (!cmpActive || picked.length < 2) return;
    const my = ++cmpSeq;
    const q = new URLSearchParams({ by: cmpBy.value, values: picked.join(','), since: fSince.value });
    cmpMsg.textContent = 'comparing…';
    let r;
    try { r = await getJSON('/api/compare?' + q); } catch (err) {
      if (my === cmpSeq) cmpMsg.textContent = 'comparison failed: ' + (err.message || err);
      return;
    }
    if (my !== cmpSeq || !cmpActive) return;
    const key = JSON.stringify(r);
    if (key !== lastCompare || cmpOut.dataset.query !== q.toString()) renderCompare(r); // a live refresh redraws only what changed
    lastCompare = key;
    cmpMsg.textContent = 'baseline: ' + r.values[0].value + ' · ' + fSince.selectedOptions[0].textContent;
    cmpOut.dataset.query = q.toString();
  }
  const pct = (v) => fmt1.format(v * 100) + ' %';
  function renderCompare(r) {
    for (const k of Object.keys(cmpCharts)) { cmpCharts[k].destroy(); delete cmpCharts[k]; }
    const diffs = el('ul', null, 'cmp-diffs'); diffs.id = 'cmp-diffs';
    for (const d of r.diffs) {
      const li = el('li', null, 'v-' + d.verdict.replace(/ /g, '-'));
      li.dataset.value = d.value; li.dataset.verdict = d.verdict;
      li.append(el('b', d.text));
      const extra = [];
      if (d.error_rate_diff !== null) extra.push(Math.abs(d.error_rate_diff) < 0.0005 ? 'same error rate'
        : 'error rate ' + (d.error_rate_diff > 0 ? '+' : '−') + fmt1.format(Math.abs(d.error_rate_diff) * 100) + ' points');
      extra.push('cost per call ' + (d.cost_per_call_ratio !== null ? d.cost_per_call_ratio.toFixed(2) + '×' : 'not comparable (unknown price)'));
      li.append(el('span', ' · ' + extra.join(' · '), 'sub'));
      diffs.append(li);
    }
    const cols = el('div', null, 'cmp-cols');
    r.values.forEach((v, i) => {
      const col = el('div', null, 'cmp-col'); col.dataset.value = v.value;
      col.style.borderTopColor = CMP_COLORS[i % CMP_COLORS.length];
      const h = el('h3', v.value); if (i === 0) h.append(el('span', ' baseline', 'sub'));
      col.append(h);
      if (!v.calls) { col.append(el('p', 'no calls of this ' + r.by + ' in this window', 'empty')); cols.append(col); return; }
      const grid = el('div', null, 'cmp-tiles');
      const add = (k, label, value, text, note) => {
        const t = el('div', null, 'tile'); t.dataset.k = k;
        const b = el('b', text, 'v'); b.dataset.value = value === null ? '' : String(value);
        t.append(el('span', label, 'k'), b);
        if (note) t.append(el('small', note, 'n'));
        grid.append(t);
      };
      add('calls', 'calls', v.calls, fmt0.format(v.calls), v.truncated ? 'newest ' + v.calls + ' of ' + v.calls_in_window : '');
      add('error_rate', 'error rate', v.error_rate, pct(v.error_rate), v.errors + ' of ' + v.calls + ' failed');
      add('p50', 'latency p50', v.latency_p50_ms, ms(v.latency_p50_ms) + ' ms');
      add('p95', 'latency p95', v.latency_p95_ms, ms(v.latency_p95_ms) + ' ms');
      add('ttft_p50', 'TTFT p50', v.ttft_p50_ms, v.ttft_p50_ms !== null ? ms(v.ttft_p50_ms) + ' ms' : '–',
        v.ttft_p50_ms !== null ? v.streamed + ' streamed' : 'no streamed calls: no TTFT');
      add('cost_per_call', 'cost / call', v.cost_per_call_usd, v.cost_per_call_usd !== null ? usd(v.cost_per_call_usd) : 'unknown',
        v.cost_per_call_usd === null ? 'no priced calls' : v.priced_calls < v.calls ? 'over ' + v.priced_calls + ' priced calls' : '');
      add('cost_per_1k', 'cost / 1k tokens', v.cost_per_1k_tokens_usd, v.cost_per_1k_tokens_usd !== null ? usd(v.cost_per_1k_tokens_usd) : 'unknown');
      col.append(grid);
      cols.append(col);
    });
    const charts = el('div', null, 'charts cmp-charts');
    const fig = (id, caption) => {
      const f = document.createElement('figure');
      const cap = el('figcaption', caption); cap.id = id + '-cap';
      f.append(cap);
      return f;
    };
    const series = (key) => r.values.map((v, i) => ({ v, i, s: v[key] }));
    const drawCDF = (id, caption, key, emptyText) => {
      const f = fig(id, caption);
      const withData = series(key).filter((x) => x.s.length);
      if (!withData.length) { f.append(el('p', emptyText, 'empty cmp-empty')); charts.append(f); return; }
      const box = el('div', null, 'chart'); const cv = document.createElement('canvas');
      cv.id = id; cv.setAttribute('role', 'img'); cv.setAttribute('aria-labelledby', id + '-cap');
      box.append(cv); f.append(box);
      const missing = series(key).filter((x) => !x.s.length).map((x) => x.v.value);
      if (missing.length) f.append(el('p', emptyText.replace(/^no /, 'no ') + ' for ' + missing.join(', '), 'sub'));
      charts.append(f);
      if (!C) return;
      const datasets = withData.map(({ v, i, s }) => {
        const xs = [...s].sort((a, b) => a - b), n = xs.length;
        const step = Math.max(1, Math.floor(n / 400)); // at most ~400 points a line
        const pts = [];
        for (let j = 0; j < n; j += step) pts.push({ x: xs[j], y: (j + 1) / n });
        if (pts[pts.length - 1].x !== xs[n - 1]) pts.push({ x: xs[n - 1], y: 1 });
        return { label: v.value + ' (' + n + ')', data: pts, borderColor: CMP_COLORS[i % CMP_COLORS.length],
          backgroundColor: CMP_COLORS[i % CMP_COLORS.length], pointRadius: 0, borderWidth: 2, stepped: true };
      });
      cmpCharts[id] = new C(cv, { type: 'line', data: { datasets }, options: { responsive: true, parsing: true,
        scales: { x: { type: 'linear', title: { display: true, text: 'ms' } },
          y: { min: 0, max: 1, title: { display: true, text: 'share of calls ≤ x' }, ticks: { callback: (t) => Math.round(t * 100) + ' %' } } },
        plugins: { legend: { position: 'bottom' } } } });
    };
    drawCDF('cmp-latency', 'Latency (ms): cumulative share of calls', 'latency_samples_ms', 'no calls: no latency');
    drawCDF('cmp-ttft', 'Time to first token (ms): cumulative share of streamed calls', 'ttft_samples_ms', 'no streamed calls: no TTFT');
    cmpOut.replaceChildren(diffs, cols, charts);
  }

  // ---- refresh -------------------------------------------------------------
  let seq = 0;
  async function refresh() {
    const my = ++seq;
    const q = filters(true), qNoModel = filters(false);
    const statsQ = new URLSearchParams(q); statsQ.set('group_by', 'model');
    const optsQ = new URLSearchParams(qNoModel); optsQ.set('group_by', 'model');
    const provQ = new URLSearchParams(q); provQ.set('group_by', 'provider,upstream');
    // /api/calls leaves the captured texts out unless asked (text=true): the
    // list and the distributions need none; the drill-down reads one call.
    const callsQ = new URLSearchParams(q); callsQ.set('limit', String(SAMPLE));
    try {
      const [s, opts, list, prov] = await Promise.all([
        getJSON('/api/stats?' + statsQ), getJSON('/api/stats?' + optsQ), getJSON('/api/calls?' + callsQ), getJSON('/api/stats?' + provQ)]);
      if (my !== seq) return; // a newer refresh started; drop this one
      renderModelOptions(opts);
      renderTiles(s);
      renderModels(s);
      renderProviders(prov);
      refreshBudgets();
      renderCalls(list.calls);
      renderDatalists(list.calls);
      renderCompareChoices(list.calls);
      renderCharts(list.calls, s, Boolean(list.next));
      statusEl.classList.remove('bad');
      statusEl.textContent = 'updated ' + new Date().toLocaleTimeString();
      main.dataset.query = q.toString();
      main.dataset.refreshes = String(Number(main.dataset.refreshes) + 1);
      if (cmpActive) runCompare();
    } catch (err) {
      if (my !== seq) return;
      statusEl.classList.add('bad');
      statusEl.textContent = 'refresh failed: ' + (err.message || err);
    }
  }
  window.llmscopeRefresh = refresh;
  refresh();
  schedule();
})();
