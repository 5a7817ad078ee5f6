// Audit: the trail, filtered and paged, its chain verified, exported.

import { api, describeError } from './api.js';
import {
  h,
  append,
  uid,
  field,
  button,
  table,
  fmtTime,
  badge,
  idCode,
  byName,
  setStatus,
  showError,
  busy,
  pageHeader,
  navigate,
} from './ui.js';

const AUDIT_FILTERS = ['action', 'outcome', 'kind', 'principal_id', 'user_principal_id', 'secret_id', 'grant_id', 'request_id', 'reason', 'since', 'until', 'limit'];
const ACTIONS = ['proxy.request', 'proxy.response', 'proxy.connect', 'proxy.passthrough', 'secret.create', 'secret.rotate', 'secret.delete', 'grant.issue', 'grant.revoke',
  'principal.create', 'principal.delete', 'principal.member.add', 'principal.member.remove', 'key.issue', 'key.revoke',
  'provider.upload', 'provider.remove', 'provider.disable', 'provider.enable', 'provider.load', 'provider.unload',
  'keyring.rotate', 'keyring.rewrap', 'proxy_ca.create', 'proxy_ca.rotate', 'approval.approve', 'approval.deny',
  'approval.expire', 'approval.interrupt'];
const OUTCOMES = ['ok', 'interrupted', 'unauthenticated', 'grant_not_found', 'grant_expired', 'grant_revoked', 'forbidden',
  'policy_violation', 'blocked_destination', 'rate_limited', 'quota_exceeded', 'provider_error', 'upstream_unreachable', 'upstream_timeout', 'upstream_error',
  'abandoned', 'payload_too_large', 'bad_request', 'not_found', 'conflict', 'allowed', 'approval_pending'];

function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export async function pageAudit(ctx) {
  const q = ctx.query;
  const filters = {};
  for (const k of AUDIT_FILTERS) if (q.get(k)) filters[k] = q.get(k);
  const limit = Number(filters.limit) || 50;
  delete filters.limit;
  const [principals, secrets] = await Promise.all([api.principals().catch(() => []), api.secrets().catch(() => [])]);
  const principalById = new Map(principals.map((p) => [p.id, p]));
  const secretById = new Map(secrets.map((s) => [s.id, s]));

  // Filter form.
  const listId = uid('actions');
  const outcomesId = uid('outcomes');
  const inputs = {
    action: h('input', { type: 'text', list: listId, autocomplete: 'off', spellcheck: 'false', 'data-testid': 'audit-action', value: filters.action || '' }),
    outcome: h('input', { type: 'text', list: outcomesId, autocomplete: 'off', spellcheck: 'false', 'data-testid': 'audit-outcome', value: filters.outcome || '' }),
    kind: h('select', { 'data-testid': 'audit-kind' }, h('option', { value: '', text: 'Any' }), h('option', { value: 'proxy', text: 'Data plane (proxy)' }), h('option', { value: 'admin', text: 'Admin changes' })),
    principal_id: h('select', { 'data-testid': 'audit-principal' }, h('option', { value: '', text: 'Any' }), [...principals].sort(byName).map((p) => h('option', { value: p.id, text: `${p.name} (${p.kind})` }))),
    // The person an app acted for (their user token): users only.
    user_principal_id: h('select', { 'data-testid': 'audit-user' }, h('option', { value: '', text: 'Anyone' }), [...principals].filter((p) => p.kind === 'user').sort(byName).map((p) => h('option', { value: p.id, text: p.name }))),
    secret_id: h('select', { 'data-testid': 'audit-secret' }, h('option', { value: '', text: 'Any' }), [...secrets].sort(byName).map((s) => h('option', { value: s.id, text: s.name }))),
    grant_id: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'audit-grant', placeholder: 'grant UUID', value: filters.grant_id || '' }),
    request_id: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'audit-request-id', value: filters.request_id || '' }),
    reason: h('input', { type: 'text', autocomplete: 'off', 'data-testid': 'audit-reason', value: filters.reason || '' }),
    since: h('input', { type: 'datetime-local', 'data-testid': 'audit-since', value: filters.since ? toLocalInput(filters.since) : '' }),
    until: h('input', { type: 'datetime-local', 'data-testid': 'audit-until', value: filters.until ? toLocalInput(filters.until) : '' }),
    limit: h('select', { 'data-testid': 'audit-limit' }, ['10', '25', '50', '100', '500'].map((n) => h('option', { value: n, text: n }))),
  };
  // Keep an id filter that is not in the lists (e.g. a deleted secret) selectable.
  for (const key of ['principal_id', 'user_principal_id', 'secret_id']) {
    if (filters[key] && ![...inputs[key].options].some((o) => o.value === filters[key])) {
      inputs[key].append(h('option', { value: filters[key], text: filters[key] }));
    }
  }
  inputs.kind.value = filters.kind || '';
  inputs.principal_id.value = filters.principal_id || '';
  inputs.user_principal_id.value = filters.user_principal_id || '';
  inputs.secret_id.value = filters.secret_id || '';
  inputs.limit.value = String(limit);
  const apply = h('button', { type: 'submit', 'data-testid': 'audit-apply', text: 'Apply filters' });
  const clear = button('Clear filters', () => navigate('#/audit'), { kind: 'secondary', testid: 'audit-clear' });
  const exportBtn = button('Export JSON lines', null, { kind: 'secondary', testid: 'audit-export' });
  const form = h('form', { novalidate: true, class: 'card filters', 'aria-labelledby': 'audit-filter-title' },
    h('h2', { id: 'audit-filter-title', class: 'visually-hidden', text: 'Filters' }),
    h('datalist', { id: listId }, ACTIONS.map((a) => h('option', { value: a }))),
    h('datalist', { id: outcomesId }, OUTCOMES.map((a) => h('option', { value: a }))),
    h('div', { class: 'grid four' },
      field({ label: 'Action', control: inputs.action, help: 'e.g. proxy.request, grant.revoke' }),
      field({ label: 'Outcome', control: inputs.outcome, help: 'ok, allowed, or an error code' }),
      field({ label: 'Kind', control: inputs.kind }),
      field({ label: 'Principal', control: inputs.principal_id }),
      field({ label: 'For person', control: inputs.user_principal_id, help: 'Calls an app made with their user token' }),
      field({ label: 'Secret', control: inputs.secret_id }),
      field({ label: 'Grant id', control: inputs.grant_id }),
      field({ label: 'Request id', control: inputs.request_id }),
      field({ label: 'Reason contains', control: inputs.reason, help: 'The app’s X-Credgate-Reason' }),
      field({ label: 'Per page', control: inputs.limit }),
      field({ label: 'Since (local time)', control: inputs.since }),
      field({ label: 'Until (local time)', control: inputs.until })),
    h('div', { class: 'actions' }, apply, clear, exportBtn));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    for (const [k, el] of Object.entries(inputs)) {
      let v = el.value.trim();
      if (!v) continue;
      if (k === 'since' || k === 'until') {
        const d = new Date(v);
        if (Number.isNaN(d.getTime())) continue;
        v = d.toISOString();
      }
      if (k === 'limit' && v === '50') continue;
      params.set(k, v);
    }
    const text = params.toString();
    navigate(text ? `#/audit?${text}` : '#/audit');
  });

  // Chain verification.
  const verifyEl = h('div', { class: 'verify', 'data-testid': 'audit-verify', role: 'note' }, 'Checking the hash chain…');
  const drawVerify = async () => {
    try {
      const r = await api.verifyAudit();
      verifyEl.textContent = '';
      verifyEl.dataset.ok = String(Boolean(r.ok));
      verifyEl.className = `verify ${r.ok ? 'ok' : 'bad'}`;
      append(verifyEl, r.ok
        ? [h('strong', { text: 'Audit chain verified: ' }), `${r.records} records, every hash links; head #${r.head_seq} (${String(r.head_hash).slice(0, 16)}…).`]
        : [h('strong', { text: 'Audit chain does NOT verify: ' }), `${r.error || 'a record does not fit the chain'} (checked ${r.records} records up to #${r.head_seq}).`]);
    } catch (err) {
      verifyEl.dataset.ok = 'unknown';
      verifyEl.className = 'verify bad';
      verifyEl.textContent = describeError(err, 'The chain could not be verified');
    }
  };

  // Records, paged with `before`.
  const stack = [];
  let before;
  const tableArea = h('div', { 'aria-live': 'polite' });
  const newer = button('← Newer', null, { kind: 'secondary', testid: 'audit-newer' });
  const older = button('Older →', null, { kind: 'secondary', testid: 'audit-older' });
  const pageInfo = h('span', { class: 'muted', 'data-testid': 'audit-page-info' });
  let nextBefore;
  const drawPage = async () => {
    const page = await api.audit({ ...filters, limit, before });
    nextBefore = page.next_before;
    newer.disabled = stack.length === 0;
    older.disabled = nextBefore === undefined || nextBefore === null;
    const first = page.data[0];
    const last = page.data[page.data.length - 1];
    pageInfo.textContent = page.data.length ? `Page ${stack.length + 1}: records #${first.seq} to #${last.seq}, newest first.` : `Page ${stack.length + 1}: no records.`;
    tableArea.textContent = '';
    tableArea.append(auditTable(page.data, principalById, secretById));
  };
  newer.addEventListener('click', () => busy(newer, async () => {
    before = stack.pop();
    try {
      await drawPage();
    } catch (err) {
      showError(err, 'Could not load the page');
    }
  }));
  older.addEventListener('click', () => busy(older, async () => {
    stack.push(before);
    before = nextBefore;
    try {
      await drawPage();
    } catch (err) {
      before = stack.pop();
      showError(err, 'Could not load the page');
    }
  }));
  exportBtn.addEventListener('click', () => busy(exportBtn, () => exportAudit(filters)));

  await Promise.all([drawVerify(), drawPage()]);
  const active = Object.keys(filters).length;
  return h('section', {},
    pageHeader('Audit trail', 'Every data-plane call and every admin change, newest first. Records never hold a credential.'),
    verifyEl,
    form,
    h('div', { class: 'pager' }, newer, older, pageInfo, active ? h('span', { class: 'muted', text: ` Filtered by ${Object.keys(filters).join(', ').replace('user_principal_id', 'person').replace(/_id/g, '')}.` }) : null),
    tableArea);
}

function auditTable(records, principalById, secretById) {
  const rows = records.map((r) => {
    const p = r.principal_id ? principalById.get(r.principal_id) : null;
    const s = r.secret_id ? secretById.get(r.secret_id) : null;
    const okOutcome = r.outcome === 'ok' || r.outcome === 'allowed';
    const request = r.method || r.host || r.path
      ? [h('code', { text: `${r.method || ''} ${r.host || ''}${r.path || ''}`.trim() }), r.status ? ` → ${r.status}` : '',
        r.latency_ms !== undefined ? h('span', { class: 'muted', text: ` ${Math.round(r.latency_ms)} ms` }) : null,
        r.mode === 'forward' ? [' ', badge('forward proxy', 'info')] : null]
      : r.target ? h('code', { class: 'id', text: r.target }) : '';
    return h('tr', { 'data-testid': 'audit-row', 'data-seq': String(r.seq), 'data-action': r.action, 'data-outcome': r.outcome, 'data-grant-id': r.grant_id || '' },
      h('td', { text: String(r.seq) }),
      h('td', {}, h('time', { datetime: r.at, text: fmtTime(r.at) })),
      h('td', {}, h('code', { text: r.action })),
      h('td', {}, badge(r.outcome, okOutcome ? 'ok' : 'bad')),
      h('td', {}, r.actor ? h('code', { class: 'id', text: r.actor }) : '', p ? [h('br'), `${p.name} (${p.kind})`] : r.principal_id ? [h('br'), idCode(r.principal_id)] : null,
        r.user_principal_id ? [h('br'), h('span', { class: 'muted', text: 'for ' }), principalById.get(r.user_principal_id)?.name || idCode(r.user_principal_id)] : null),
      h('td', {},
        s ? `${s.name}${r.secret_version ? ` v${r.secret_version}` : ''}` : r.secret_id ? idCode(r.secret_id) : '',
        r.grant_id ? [h('br'), h('span', { class: 'muted', text: 'grant ' }), idCode(r.grant_id)] : null,
        r.provider ? [h('br'), h('span', { class: 'muted', text: `provider ${r.provider}${r.provider_version ? ` ${r.provider_version}` : ''}` })] : null),
      h('td', {}, request),
      h('td', {}, r.request_id ? h('code', { class: 'id', text: r.request_id }) : ''),
      h('td', {}, r.message || '',
        r.reason ? h('div', { 'data-testid': 'audit-reason-text' }, h('span', { class: 'muted', text: 'reason: ' }), r.reason) : null,
        r.context ? h('div', {}, h('span', { class: 'muted', text: 'context: ' }), h('code', { text: JSON.stringify(r.context) })) : null));
  });
  return table({ caption: 'Audit records', headers: ['#', 'Time', 'Action', 'Outcome', 'Who', 'Secret / grant', 'Call or target', 'Request id', 'Message, reason, context'], rows, testid: 'audit-table', empty: 'No records match.' });
}

async function exportAudit(filters) {
  const parts = [];
  let count = 0;
  let before;
  try {
    for (;;) {
      const response = await api.auditJsonl({ ...filters, limit: 10000, before });
      const text = await response.text();
      parts.push(text);
      count += text.split('\n').filter(Boolean).length;
      const next = response.headers.get('x-credgate-next-before');
      if (!next) break;
      before = next;
    }
  } catch (err) {
    showError(err, 'The export failed');
    return;
  }
  const blob = new Blob(parts, { type: 'application/x-ndjson' });
  const url = URL.createObjectURL(blob);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const a = h('a', { href: url, download: `credgate-audit-${stamp}.jsonl`, class: 'visually-hidden', text: 'download' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  setStatus('ok', `Exported ${count} audit record(s) as JSON lines.`);
}
