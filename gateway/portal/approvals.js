// Approvals: calls held until a person decides. The list shows who asked for what and why,
// with the start of the body; Approve makes the call at once, Deny drops it. Both ask first.

import { api } from './api.js';
import {
  h,
  field,
  button,
  table,
  timeEl,
  badge,
  idCode,
  showError,
  busy,
  confirmAction,
  pageHeader,
  navigate,
} from './ui.js';

const STATUSES = ['pending', 'executing', 'executed', 'failed', 'denied', 'expired'];
const TONE = { pending: 'warn', executing: 'info', executed: 'ok', failed: 'bad', denied: 'bad', expired: 'bad' };

/** Sets the count of pending approvals in the navigation (hidden at zero). */
export async function refreshPendingCount() {
  const badgeEl = document.querySelector('[data-testid="nav-approvals-count"]');
  if (!badgeEl) return;
  try {
    const pending = await api.approvals({ status: 'pending' });
    badgeEl.textContent = String(pending.length);
    badgeEl.hidden = pending.length === 0;
    badgeEl.setAttribute('aria-label', `${pending.length} pending`);
  } catch {
    badgeEl.hidden = true;
  }
}

function callText(a) {
  return `${a.method} ${a.host}${a.path}`;
}

function who(a, principalById) {
  const p = principalById.get(a.principal_id);
  return p ? `${p.name} (${p.kind})` : a.principal_id;
}

/** The decision buttons for a pending approval; `after` runs once it is decided. */
function decisionControls(a, after) {
  const note = h('input', { type: 'text', maxlength: '1000', 'data-testid': 'approval-note', placeholder: 'optional' });
  const approve = button('Approve', null, { kind: 'primary', testid: 'approve', label: `Approve ${callText(a)}` });
  const deny = button('Deny', null, { kind: 'danger', testid: 'deny', label: `Deny ${callText(a)}` });
  const decide = (action, el) => async () => {
    const verb = action === 'approve' ? 'Approve' : 'Deny';
    const ok = await confirmAction(`${verb} this call?`,
      action === 'approve'
        ? `credgate makes ${callText(a)} now, with the stored credential, and keeps the response for the app.`
        : `${callText(a)} is never made; the app is told it was denied.`,
      verb);
    if (!ok) return;
    await busy(el, async () => {
      try {
        const decided = await api.decideApproval(a.id, action, note.value.trim() || undefined);
        await refreshPendingCount();
        // The page is drawn again with the outcome; the status line comes with it.
        after(['ok', `Approval ${a.id}: ${decided.status}${decided.response_status ? ` (upstream answered ${decided.response_status})` : ''}.`]);
      } catch (err) {
        showError(err, `Could not ${action} the call`);
      }
    });
  };
  approve.addEventListener('click', decide('approve', approve));
  deny.addEventListener('click', decide('deny', deny));
  return h('div', { class: 'row-inline' }, field({ label: 'Note (shown to the app)', control: note }), approve, deny);
}

function details(a, principalById, secretById) {
  const s = secretById.get(a.secret_id);
  const rows = [
    ['Status', badge(a.status, TONE[a.status] || 'info')],
    ['Call', h('code', { text: callText(a) })],
    ['Who', who(a, principalById)],
    ['Secret', s ? s.name : a.secret_id],
    ['Grant', idCode(a.grant_id)],
    ['Reason', a.reason || h('span', { class: 'muted', text: 'none given' })],
    ['Context', a.context ? h('code', { text: JSON.stringify(a.context) }) : h('span', { class: 'muted', text: 'none' })],
    ['Body', a.body_bytes
      ? [a.body_preview ? h('pre', { class: 'preview', 'data-testid': 'approval-preview', text: a.body_preview }) : null,
        h('span', { class: 'muted', text: `${a.body_bytes} bytes${a.body_preview ? '' : ' (no longer kept)'}` })]
      : h('span', { class: 'muted', text: 'empty' })],
    ['Asked', timeEl(a.created_at)],
  ];
  if (a.status === 'pending') rows.push(['Expires', timeEl(a.expires_at)]);
  if (a.status === 'executed') rows.push(['Response kept until', timeEl(a.expires_at)]);
  if (a.decided_by) rows.push(['Decided', [timeEl(a.decided_at), ' by ', h('code', { text: a.decided_by })]]);
  if (a.note) rows.push(['Note', a.note]);
  if (a.response_status) rows.push(['Upstream answered', String(a.response_status)]);
  if (a.failure) rows.push(['Failure', a.failure]);
  return h('dl', { class: 'facts', 'data-testid': 'approval-details' },
    rows.map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
}

export async function pageApprovals(ctx, parts) {
  const [principals, secrets] = await Promise.all([api.principals().catch(() => []), api.secrets().catch(() => [])]);
  const principalById = new Map(principals.map((p) => [p.id, p]));
  const secretById = new Map(secrets.map((s) => [s.id, s]));
  await refreshPendingCount();

  if (parts[0]) {
    const a = await api.approval(parts[0]);
    const section = h('section', {},
      pageHeader(`Approval of ${callText(a)}`, 'A call held until a person decides. Approving makes it at once, with the stored credential.'));
    const card = h('div', { class: 'card', 'data-testid': 'approval', 'data-status': a.status }, details(a, principalById, secretById));
    if (a.status === 'pending') {
      card.append(decisionControls(a, (status) => navigate(`#/approvals/${encodeURIComponent(a.id)}?decided=${Date.now()}`, status)));
    }
    section.append(card, h('p', {}, h('a', { href: '#/approvals', text: 'All approvals' })));
    return section;
  }

  const status = ctx.query.get('status') || 'pending';
  const select = h('select', { 'data-testid': 'approval-status' },
    h('option', { value: 'all', text: 'Any status' }), STATUSES.map((s) => h('option', { value: s, text: s })));
  select.value = status;
  select.addEventListener('change', () => navigate(`#/approvals?status=${encodeURIComponent(select.value)}`));
  const list = await api.approvals(status === 'all' ? {} : { status });
  const rows = list.map((a) => h('tr', { 'data-testid': 'approval-row', 'data-approval-id': a.id, 'data-status': a.status },
    h('td', {}, badge(a.status, TONE[a.status] || 'info')),
    h('td', {}, h('code', { text: callText(a) }), a.body_preview ? h('pre', { class: 'preview', text: a.body_preview }) : null),
    h('td', { text: who(a, principalById) }),
    h('td', {}, a.reason || '', a.context ? h('div', {}, h('code', { text: JSON.stringify(a.context) })) : null),
    h('td', {}, timeEl(a.created_at)),
    h('td', {}, timeEl(a.expires_at)),
    h('td', { class: 'row-actions' },
      h('a', { href: `#/approvals/${encodeURIComponent(a.id)}`, text: 'Open', 'aria-label': `Open approval ${a.id}` }),
      a.status === 'pending' ? decisionControls(a, (outcome) => navigate(`#/approvals?status=${encodeURIComponent(status)}&t=${Date.now()}`, outcome)) : null)));
  return h('section', {},
    pageHeader('Approvals', 'Calls a grant holds until a person decides (its require_approval rules). Approve makes the call now; deny drops it. The app is told either way.'),
    h('div', { class: 'toolbar' }, field({ label: 'Status', control: select })),
    table({ caption: 'Approvals', headers: ['Status', 'Call', 'Who', 'Reason and context', 'Asked', 'Expires', 'Actions'], rows, testid: 'approvals-table', empty: status === 'pending' ? 'Nothing waits for approval.' : 'No approvals match.' }));
}
