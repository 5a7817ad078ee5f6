// Grants of a secret: issue, revoke, and the snippet an app needs.

import { api } from './api.js';
import {
  h,
  uid,
  field,
  checkbox,
  button,
  table,
  fmtTime,
  timeEl,
  badge,
  shortId,
  idCode,
  byName,
  setStatus,
  showError,
  confirmAction,
  busy,
  copyText,
  pageHeader,
  navigate,
  withScope,
} from './ui.js';
import { sparkline, meter } from './overview.js';

const PER = { 1: 'second', 60: 'minute', 3600: 'hour', 86400: 'day' };
const QUOTA_PER = { hour: 'an hour', day: 'a day', month: 'a month', total: 'in all' };

function rateText(rate) {
  const per = PER[rate.per_seconds] ? PER[rate.per_seconds] : `${rate.per_seconds} s`;
  return `${rate.requests} calls per ${per}`;
}

function limitsText(policy) {
  const methods = policy.allowed_methods && policy.allowed_methods.length ? policy.allowed_methods.join(', ') : 'any method';
  const paths = policy.allowed_path_prefixes && policy.allowed_path_prefixes.length ? policy.allowed_path_prefixes.join(', ') : 'any path';
  const parts = [methods, paths];
  if (policy.rate_limit) parts.push(rateText(policy.rate_limit));
  if (policy.quota) parts.push(`${policy.quota.calls} calls ${QUOTA_PER[policy.quota.period] || policy.quota.period}`);
  for (const rule of policy.require_approval || []) {
    parts.push(`approval for ${(rule.methods || ['any method']).join(', ')}${rule.path_prefixes ? ` under ${rule.path_prefixes.join(', ')}` : ''}`);
  }
  return parts.join('; ');
}

/**
 * What a limited grant has used against its limits, read from the grant itself (the list does
 * not carry it): a bar per limit and its numbers.
 */
function usageCell(grant) {
  const cell = h('div', { class: 'muted', 'data-testid': 'grant-usage' });
  api.grant(grant.grant_id).then((g) => {
    const usage = g.usage || {};
    const parts = [];
    if (usage.rate_limit) {
      const r = usage.rate_limit;
      const text = `${r.available} of ${r.requests} calls available now`;
      parts.push([meter(r.requests - r.available, r.requests, { label: `Rate limit: ${text}`, testid: 'rate-meter' }), text]);
    }
    if (usage.quota) {
      const q = usage.quota;
      const text = `${q.used} of ${q.calls} used${q.resets_at ? `, resets ${fmtTime(q.resets_at)}` : ''}`;
      parts.push([meter(q.used, q.calls, { label: `Quota: ${text}`, testid: 'quota-meter' }), text]);
    }
    cell.textContent = '';
    parts.forEach((part, i) => cell.append(h('span', { class: 'usage' }, i ? '; ' : '', ...part)));
  }).catch(() => { cell.textContent = 'usage unavailable'; });
  return cell;
}

function statusBadge(status, reason) {
  const tone = status === 'active' ? 'ok' : status === 'revoked' ? 'bad' : 'warn';
  return badge(reason && status === 'revoked' && reason !== 'revoked' ? `${status} (${reason.replace(/_/g, ' ')})` : status, tone);
}

export async function pageGrants(ctx, parts) {
  const secretId = parts[0] || '';
  const [secrets, principals] = await Promise.all([api.secrets(), api.principals()]);
  const secret = secretId ? secrets.find((s) => s.id === secretId) : null;
  const principalById = new Map(principals.map((p) => [p.id, p]));
  const secretById = new Map(secrets.map((s) => [s.id, s]));

  const select = h('select', { 'data-testid': 'grant-secret' },
    h('option', { value: '', text: 'All secrets' }),
    [...secrets].sort(byName).map((s) => h('option', { value: s.id, text: `${s.name} (${s.type})` })));
  select.value = secret ? secret.id : '';
  select.addEventListener('change', () => navigate(select.value ? `#/grants/${encodeURIComponent(select.value)}` : '#/grants'));

  const section = h('section', {},
    pageHeader(secret ? `Grants of “${secret.name}”` : 'Grants',
      'A grant lets one principal (or the members of a group) use one secret, for a while, within limits. Apps put the grant id in their configuration; the value stays here.'),
    h('div', { class: 'toolbar' }, field({ label: 'Secret', control: select })));
  if (secretId && !secret) {
    section.append(h('p', { class: 'empty', text: 'That secret does not exist (or was deleted). Choose another one.' }));
  }
  const issuedArea = h('div', { 'aria-live': 'polite' });
  const listArea = h('div', {});

  const drawList = async () => {
    const grants = secret ? await api.grantsOf(secret.id) : await api.grants();
    // Each grant's calls over the last day, from one read of the counts.
    const dayAgo = new Date(Date.now() - 86400 * 1000).toISOString();
    const perGrant = await api.stats({ from: dayAgo, bucket: 3600, by: 'grant', ...(secret ? { secret_id: secret.id } : {}) })
      .then((st) => new Map(st.series.map((x) => [x.key, x.points])))
      .catch(() => new Map());
    grants.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    const rows = grants.map((g) => {
      const p = principalById.get(g.principal_id);
      const s = secretById.get(g.secret_id);
      const revoke = g.status !== 'revoked'
        ? withScope(button('Revoke', null, { kind: 'danger', testid: 'revoke-grant', label: `Revoke grant ${g.grant_id}` }), 'grants:write')
        : null;
      if (revoke) {
        revoke.addEventListener('click', async () => {
          const ok = await confirmAction('Revoke this grant?',
            `Grant ${g.grant_id} of “${s ? s.name : g.secret_id}” to “${p ? p.name : g.principal_id}” stops working from the next call. This cannot be undone.`,
            'Revoke grant');
          if (!ok) return;
          await busy(revoke, async () => {
            try {
              await api.revokeGrant(g.grant_id);
              setStatus('ok', `Grant ${g.grant_id} revoked; calls with it are now refused.`);
              listArea.textContent = '';
              listArea.append(await drawList());
            } catch (err) {
              showError(err, 'Could not revoke the grant');
            }
          });
        });
      }
      return h('tr', { 'data-testid': 'grant-row', 'data-grant-id': g.grant_id, 'data-status': g.status },
        h('th', { scope: 'row' }, idCode(g.grant_id)),
        secret ? null : h('td', {}, s ? h('a', { href: `#/grants/${encodeURIComponent(s.id)}`, text: s.name }) : h('span', { class: 'muted', text: `${shortId(g.secret_id)} (deleted)` })),
        h('td', {}, p ? `${p.name} (${p.kind})` : h('span', { class: 'muted', text: `${shortId(g.principal_id)} (deleted)` })),
        h('td', { 'data-col': 'status' }, statusBadge(g.status, g.revoked_reason)),
        h('td', {}, g.status === 'revoked' ? ['revoked ', timeEl(g.revoked_at)] : timeEl(g.grant_policy.expires_at)),
        h('td', {}, limitsText(g.grant_policy),
          g.status === 'active' && (g.grant_policy.rate_limit || g.grant_policy.quota) ? usageCell(g) : null),
        h('td', {}, sparkline(perGrant.get(g.grant_id), { label: `Calls of grant ${g.grant_id}`, testid: 'grant-calls' })),
        h('td', {}, timeEl(g.created_at)),
        h('td', { class: 'row-actions' },
          h('a', { href: `#/audit?grant_id=${encodeURIComponent(g.grant_id)}`, text: 'Audit', 'aria-label': `Audit of grant ${g.grant_id}` }),
          revoke));
    });
    const headers = ['Grant id', ...(secret ? [] : ['Secret']), 'Principal', 'Status', 'Expires', 'Limits (methods; paths; rate; quota; approval)', 'Calls, last day', 'Created', 'Actions'];
    return table({ caption: 'Grants', headers, rows, testid: 'grants-table', empty: 'No grants yet.' });
  };

  if (secret) {
    section.append(withScope(issueGrantForm(secret, principals, async (grant) => {
      issuedArea.textContent = '';
      issuedArea.append(issuedGrantPanel(grant, secret, principalById.get(grant.principal_id)));
      listArea.textContent = '';
      listArea.append(await drawList());
      const code = issuedArea.querySelector('[data-testid="issued-grant-id"]');
      if (code) code.scrollIntoView({ block: 'nearest' });
    }), 'grants:write'));
  } else if (secrets.length) {
    section.append(h('p', { class: 'help', text: 'Choose a secret to issue a grant of it.' }));
  }
  if (secret) {
    const dayAgo = new Date(Date.now() - 86400 * 1000).toISOString();
    const ofSecret = await api.stats({ from: dayAgo, bucket: 3600, by: 'secret', secret_id: secret.id }).catch(() => null);
    const points = ofSecret && ofSecret.series.length ? ofSecret.series[0].points : [];
    section.append(h('p', { class: 'muted' }, 'Calls with this secret, last day: ',
      sparkline(points, { label: `Calls with secret ${secret.name}`, testid: 'secret-calls' }),
      ` ${ofSecret ? ofSecret.total : 0}`));
  }
  section.append(issuedArea, h('h2', { text: secret ? 'Its grants' : 'All grants' }), listArea);
  listArea.append(await drawList());
  return section;
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

function issueGrantForm(secret, principals, onIssued) {
  const principalSelect = h('select', { 'data-testid': 'grant-principal' },
    h('option', { value: '', text: 'Choose a principal…' }),
    [...principals].sort(byName).map((p) => h('option', { value: p.id, text: `${p.name} (${p.kind})` })));
  const modeName = uid('life');
  const ttlRadio = h('input', { type: 'radio', name: modeName, id: uid('r'), checked: true, 'data-testid': 'grant-mode-ttl' });
  const untilRadio = h('input', { type: 'radio', name: modeName, id: uid('r'), 'data-testid': 'grant-mode-until' });
  const ttlNumber = h('input', { type: 'number', min: '1', step: '1', value: '30', 'data-testid': 'grant-ttl' });
  const ttlUnit = h('select', { 'data-testid': 'grant-ttl-unit' },
    h('option', { value: '60', text: 'minutes' }), h('option', { value: '3600', text: 'hours' }),
    h('option', { value: '86400', text: 'days' }));
  ttlUnit.value = '86400';
  const until = h('input', { type: 'datetime-local', 'data-testid': 'grant-expires-at', disabled: true });
  const sync = () => {
    ttlNumber.disabled = !ttlRadio.checked;
    ttlUnit.disabled = !ttlRadio.checked;
    until.disabled = !untilRadio.checked;
  };
  ttlRadio.addEventListener('change', sync);
  untilRadio.addEventListener('change', sync);
  const methodBoxes = METHODS.map((m) => {
    const box = h('input', { type: 'checkbox', id: uid('m'), value: m, 'data-testid': `grant-method-${m}` });
    return { m, box, el: h('div', { class: 'check' }, box, h('label', { for: box.id, text: m })) };
  });
  const paths = h('textarea', { rows: '2', spellcheck: 'false', 'data-testid': 'grant-paths', placeholder: '/v1/chat' });
  const rateRequests = h('input', { type: 'number', min: '1', step: '1', 'data-testid': 'grant-rate-requests', placeholder: 'no limit' });
  const ratePer = h('select', { 'data-testid': 'grant-rate-per' },
    Object.entries(PER).map(([seconds, name]) => h('option', { value: seconds, text: `per ${name}` })));
  ratePer.value = '60';
  const quotaCalls = h('input', { type: 'number', min: '1', step: '1', 'data-testid': 'grant-quota-calls', placeholder: 'no quota' });
  const quotaPeriod = h('select', { 'data-testid': 'grant-quota-period' },
    Object.entries(QUOTA_PER).map(([period, name]) => h('option', { value: period, text: name })));
  quotaPeriod.value = 'day';
  const approvalBoxes = METHODS.map((m) => {
    const box = h('input', { type: 'checkbox', id: uid('a'), value: m, 'data-testid': `grant-approval-method-${m}` });
    return { m, box, el: h('div', { class: 'check' }, box, h('label', { for: box.id, text: m })) };
  });
  const approvalPaths = h('textarea', { rows: '2', spellcheck: 'false', 'data-testid': 'grant-approval-paths', placeholder: '/v1/refunds' });
  const approvalTtl = h('input', { type: 'number', min: '1', max: '10080', step: '1', value: '60', 'data-testid': 'grant-approval-ttl' });
  const submit = h('button', { type: 'submit', 'data-testid': 'issue-grant', text: 'Issue grant' });
  const form = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'issue-grant-title' },
    h('h2', { id: 'issue-grant-title', text: `Issue a grant of “${secret.name}”` }),
    h('div', { class: 'grid' }, field({ label: 'Principal', control: principalSelect, required: true, help: 'A group’s grant is usable by its members.' })),
    h('fieldset', { class: 'nested' },
      h('legend', { text: 'Lifetime' }),
      h('div', { class: 'row-inline' },
        h('div', { class: 'check' }, ttlRadio, h('label', { for: ttlRadio.id, text: 'For' })),
        field({ label: 'Duration', control: ttlNumber }),
        field({ label: 'Unit', control: ttlUnit })),
      h('div', { class: 'row-inline' },
        h('div', { class: 'check' }, untilRadio, h('label', { for: untilRadio.id, text: 'Until' })),
        field({ label: 'Expires at (your local time)', control: until }))),
    h('fieldset', { class: 'nested' },
      h('legend', { text: 'Allowed methods (none checked: any method)' }),
      h('div', { class: 'checks-inline' }, methodBoxes.map((x) => x.el))),
    field({ label: 'Allowed path prefixes', control: paths, wide: true, help: 'Optional; one per line, each starting with “/”. Matched on whole segments: /v1/chat covers /v1/chat/completions, not /v1/chatty. Empty: any path.' }),
    h('fieldset', { class: 'nested' },
      h('legend', { text: 'Rate limit and quota (optional)' }),
      h('div', { class: 'row-inline' },
        field({ label: 'Calls at most', control: rateRequests, help: 'A burst of this many, refilled over the period. Past it: 429 rate_limited.' }),
        field({ label: 'Rate period', control: ratePer })),
      h('div', { class: 'row-inline' },
        field({ label: 'Quota (calls)', control: quotaCalls, help: 'Per calendar period in UTC, or in all. Past it: 429 quota_exceeded.' }),
        field({ label: 'Quota period', control: quotaPeriod }))),
    h('fieldset', { class: 'nested' },
      h('legend', { text: 'Require a person’s approval (optional)' }),
      h('p', { class: 'help', text: 'Calls with these methods (and under these paths, if given) wait until an operator approves them in the Approvals page; the app gets 202 and follows up.' }),
      h('div', { class: 'checks-inline' }, approvalBoxes.map((x) => x.el)),
      field({ label: 'Only under these path prefixes', control: approvalPaths, wide: true, help: 'Optional; one per line. Empty: any path.' }),
      field({ label: 'Waits at most (minutes)', control: approvalTtl, help: 'Also how long the response is kept for the app. 1 to 10080.' })),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!principalSelect.value) {
      setStatus('error', 'Choose the principal to issue the grant to.');
      principalSelect.focus();
      return;
    }
    const policy = {};
    if (ttlRadio.checked) {
      const n = Number(ttlNumber.value);
      if (!Number.isInteger(n) || n < 1) {
        setStatus('error', 'The duration must be a whole number of at least 1.');
        ttlNumber.focus();
        return;
      }
      policy.ttl_seconds = n * Number(ttlUnit.value);
    } else {
      const at = new Date(until.value);
      if (!until.value || Number.isNaN(at.getTime())) {
        setStatus('error', 'Choose the expiry date and time.');
        until.focus();
        return;
      }
      policy.expires_at = at.toISOString();
    }
    const methods = methodBoxes.filter((x) => x.box.checked).map((x) => x.m);
    if (methods.length) policy.allowed_methods = methods;
    const prefixes = paths.value.split(/[\n,]+/).map((x) => x.trim()).filter(Boolean);
    if (prefixes.length) policy.allowed_path_prefixes = prefixes;
    for (const [input, what] of [[rateRequests, 'rate limit'], [quotaCalls, 'quota']]) {
      if (input.value.trim() && !(Number.isInteger(Number(input.value)) && Number(input.value) >= 1)) {
        setStatus('error', `The ${what} must be a whole number of calls, at least 1.`);
        input.focus();
        return;
      }
    }
    if (rateRequests.value.trim()) policy.rate_limit = { requests: Number(rateRequests.value), per_seconds: Number(ratePer.value) };
    if (quotaCalls.value.trim()) policy.quota = { calls: Number(quotaCalls.value), period: quotaPeriod.value };
    const approvalMethods = approvalBoxes.filter((x) => x.box.checked).map((x) => x.m);
    const approvalPrefixes = approvalPaths.value.split(/[\n,]+/).map((x) => x.trim()).filter(Boolean);
    if (approvalMethods.length || approvalPrefixes.length) {
      const rule = {};
      if (approvalMethods.length) rule.methods = approvalMethods;
      if (approvalPrefixes.length) rule.path_prefixes = approvalPrefixes;
      const minutes = Number(approvalTtl.value);
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > 10080) {
        setStatus('error', 'The approval wait must be a whole number of minutes, 1 to 10080.');
        approvalTtl.focus();
        return;
      }
      policy.require_approval = [rule];
      policy.approval_ttl_seconds = minutes * 60;
    }
    await busy(submit, async () => {
      try {
        const grant = await api.issueGrant(secret.id, principalSelect.value, policy);
        setStatus('ok', `Grant ${grant.grant_id} issued; it expires ${fmtTime(grant.grant_policy.expires_at)}.`);
        await onIssued(grant);
      } catch (err) {
        showError(err, 'The grant was not issued');
      }
    });
  });
  return form;
}

function pyStr(text) {
  return JSON.stringify(String(text));
}

/** Where the snippet's example call goes: the secret's base URL, within the grant's limits. */
function exampleTarget(secret, policy) {
  const path = policy.allowed_path_prefixes && policy.allowed_path_prefixes.length ? policy.allowed_path_prefixes[0] : '/';
  let base = secret.config && typeof secret.config.base_url === 'string' ? secret.config.base_url
    : secret.config && typeof secret.config.endpoint === 'string' ? secret.config.endpoint : '';
  if (!base) {
    const host = (secret.allowed_hosts || [])[0] || 'api.example.com';
    base = `https://${host.replace(/^\*\./, 'api.')}`;
  }
  return base.replace(/\/+$/, '') + (path.startsWith('/') ? path : `/${path}`);
}

function issuedGrantPanel(grant, secret, principal) {
  const origin = location.origin;
  const policy = grant.grant_policy;
  const method = policy.allowed_methods && policy.allowed_methods.length && !policy.allowed_methods.includes('GET')
    ? policy.allowed_methods[0] : 'GET';
  const python = [
    'import os',
    '',
    'import credgate',
    '',
    '# The app holds only its credgate API key and this grant id, never the credential.',
    `GRANT_ID = ${pyStr(grant.grant_id)}`,
    '',
    `with credgate.SyncApp(os.environ["CREDGATE_APP_KEY"], base_url=${pyStr(origin)}) as vault:`,
    `    r = vault.request(${pyStr(method)}, ${pyStr(exampleTarget(secret, policy))}, grant_id=GRANT_ID)`,
    '    print(r.status_code, r.text)',
    '',
  ].join('\n');
  const baseUrlMode = `${origin}/v1/grants/${grant.grant_id}`;
  const copyId = button('Copy grant id', () => copyText(grant.grant_id, 'Grant id'), { kind: 'secondary', testid: 'copy-grant-id' });
  const copyPy = button('Copy Python snippet', () => copyText(python, 'Python snippet'), { kind: 'secondary', testid: 'copy-python' });
  return h('section', { class: 'card issued', 'data-testid': 'issued-grant', 'aria-labelledby': 'issued-grant-title' },
    h('h2', { id: 'issued-grant-title', text: 'Grant issued' }),
    h('dl', { class: 'facts' },
      h('dt', { text: 'Grant id' }), h('dd', {}, h('code', { class: 'big', 'data-testid': 'issued-grant-id', text: grant.grant_id }), ' ', copyId),
      h('dt', { text: 'Secret' }), h('dd', { text: secret.name }),
      h('dt', { text: 'Principal' }), h('dd', { text: principal ? `${principal.name} (${principal.kind})` : grant.principal_id }),
      h('dt', { text: 'Expires' }), h('dd', {}, timeEl(policy.expires_at)),
      h('dt', { text: 'Limits' }), h('dd', { text: limitsText(policy) }),
      h('dt', { text: 'Base URL for vendor SDKs' }), h('dd', {}, h('code', { 'data-testid': 'grant-base-url', text: baseUrlMode }))),
    h('p', { class: 'help', text: 'The grant id is not a secret on its own: a caller also needs an API key of the grant’s principal.' }),
    h('h3', { text: 'Python (credgate SDK)' }),
    h('pre', { class: 'snippet' }, h('code', { 'data-testid': 'python-snippet', text: python })),
    copyPy);
}
