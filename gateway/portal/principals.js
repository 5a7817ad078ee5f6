// Principals: users, groups, systems and agents, their memberships and API keys.

import { api } from './api.js';
import {
  h,
  field,
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

const KINDS = ['agent', 'user', 'system', 'group'];

export async function pagePrincipals(ctx, parts) {
  if (parts[0]) return pagePrincipal(ctx, parts[0]);
  const principals = await api.principals();
  const name = h('input', { type: 'text', autocomplete: 'off', maxlength: '200', 'data-testid': 'principal-name' });
  const kind = h('select', { 'data-testid': 'principal-kind' }, KINDS.map((k) => h('option', { value: k, text: k })));
  const submit = h('button', { type: 'submit', 'data-testid': 'create-principal', text: 'Create principal' });
  const form = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'create-principal-title', 'data-scope': 'principals:write' },
    h('h2', { id: 'create-principal-title', text: 'Create a principal' }),
    h('div', { class: 'grid' },
      field({ label: 'Name', control: name, required: true, help: 'Unique; 1 to 200 printable characters.' }),
      field({ label: 'Kind', control: kind, required: true, help: 'Users, systems and agents hold API keys and can be members of groups; a group’s grants are usable by its members.' })),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    await busy(submit, async () => {
      try {
        const p = await api.createPrincipal(kind.value, name.value);
        navigate(`#/principals/${encodeURIComponent(p.id)}`, ['ok', `Principal “${p.name}” (${p.kind}) created.${p.kind === 'group' ? ' Add its members below.' : ' Issue it an API key below.'}`]);
      } catch (err) {
        showError(err, 'The principal was not created');
      }
    });
  });
  const rows = [...principals].sort(byName).map((p) => {
    const del = withScope(button('Delete', null, { kind: 'danger', testid: 'delete-principal', label: `Delete ${p.name}` }), 'principals:write');
    del.addEventListener('click', () => deletePrincipal(p, del));
    return h('tr', { 'data-testid': 'principal-row', 'data-principal-id': p.id },
      h('th', { scope: 'row' }, h('a', { href: `#/principals/${encodeURIComponent(p.id)}`, class: 'name', text: p.name })),
      h('td', {}, badge(p.kind)),
      h('td', {}, idCode(p.id)),
      h('td', {}, timeEl(p.created_at)),
      h('td', { class: 'row-actions' },
        h('a', { href: `#/principals/${encodeURIComponent(p.id)}`, 'data-testid': 'manage-principal', 'aria-label': `Manage ${p.name}`, text: p.kind === 'group' ? 'Members' : 'Keys and groups' }),
        del));
  });
  return h('section', {},
    pageHeader('Principals and groups', 'Who may hold grants: users, systems and agents (which authenticate with API keys), and groups of them.'),
    form,
    h('h2', { text: 'All principals' }),
    table({ caption: 'Principals', headers: ['Name', 'Kind', 'Id', 'Created', 'Actions'], rows, testid: 'principals-table', empty: 'No principals yet.' }));
}

async function deletePrincipal(p, btn) {
  const ok = await confirmAction(`Delete “${p.name}”?`,
    `Deleting the ${p.kind} removes its group memberships and revokes its API keys and grants. This cannot be undone.`,
    'Delete principal');
  if (!ok) return;
  await busy(btn, async () => {
    try {
      await api.deletePrincipal(p.id);
      navigate('#/principals', ['ok', `Principal “${p.name}” deleted; its keys and grants were revoked.`]);
    } catch (err) {
      showError(err, `Could not delete “${p.name}”`);
    }
  });
}

function keyStatus(k) {
  if (k.revoked_at) return badge('revoked', 'bad');
  if (k.expires_at && new Date(k.expires_at).getTime() <= Date.now()) return badge('expired', 'warn');
  return badge('active', 'ok');
}

export async function pagePrincipal(ctx, id) {
  const [detail, all] = await Promise.all([api.principal(id), api.principals()]);
  const byId = new Map(all.map((p) => [p.id, p]));
  const isGroup = detail.kind === 'group';
  const del = withScope(button('Delete', null, { kind: 'danger', testid: 'delete-principal' }), 'principals:write');
  del.addEventListener('click', () => deletePrincipal(detail, del));
  const section = h('section', {},
    h('p', {}, h('a', { href: '#/principals', text: '← All principals' })),
    pageHeader(`${detail.name}`, `${/^[aeiou]/.test(detail.kind) ? 'An' : 'A'} ${detail.kind}, created ${fmtTime(detail.created_at)}.`, del),
    h('dl', { class: 'facts' }, h('dt', { text: 'Id' }), h('dd', {}, idCode(detail.id)), h('dt', { text: 'Kind' }), h('dd', { text: detail.kind })));
  const reload = (status) => navigate(`#/principals/${encodeURIComponent(id)}`, status);

  if (isGroup) {
    const members = (detail.members || []).map((m) => byId.get(m) || { id: m, name: `${shortId(m)} (deleted)`, kind: '?' });
    const rows = members.sort(byName).map((m) => {
      const remove = withScope(button('Remove', null, { kind: 'danger', testid: 'remove-member', label: `Remove ${m.name} from the group` }), 'principals:write');
      remove.addEventListener('click', async () => {
        const ok = await confirmAction(`Remove “${m.name}” from “${detail.name}”?`, 'It can no longer use the group’s grants.', 'Remove member');
        if (!ok) return;
        await busy(remove, async () => {
          try {
            await api.removeMember(detail.id, m.id);
            reload(['ok', `“${m.name}” removed from “${detail.name}”.`]);
          } catch (err) {
            showError(err, 'Could not remove the member');
          }
        });
      });
      return h('tr', { 'data-testid': 'member-row', 'data-principal-id': m.id },
        h('th', { scope: 'row', text: m.name }), h('td', {}, badge(m.kind)), h('td', {}, idCode(m.id)), h('td', { class: 'row-actions' }, remove));
    });
    const candidates = all.filter((p) => p.kind !== 'group' && !(detail.members || []).includes(p.id)).sort(byName);
    const select = h('select', { 'data-testid': 'member-select' },
      h('option', { value: '', text: 'Choose a user, system or agent…' }),
      candidates.map((p) => h('option', { value: p.id, text: `${p.name} (${p.kind})` })));
    const add = h('button', { type: 'submit', 'data-testid': 'add-member', text: 'Add member' });
    const form = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'add-member-title', 'data-scope': 'principals:write' },
      h('h3', { id: 'add-member-title', text: 'Add a member' }),
      field({ label: 'Member', control: select }), h('div', { class: 'actions' }, add));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!select.value) {
        setStatus('error', 'Choose the principal to add.');
        return;
      }
      const m = byId.get(select.value);
      await busy(add, async () => {
        try {
          await api.addMember(detail.id, select.value);
          reload(['ok', `“${m ? m.name : select.value}” added to “${detail.name}”.`]);
        } catch (err) {
          showError(err, 'Could not add the member');
        }
      });
    });
    section.append(h('h2', { text: 'Members' }),
      table({ caption: 'Members', headers: ['Name', 'Kind', 'Id', 'Actions'], rows, testid: 'members-table', empty: 'No members yet.' }),
      form);
    return section;
  }

  // Users, systems, agents: groups and API keys.
  const groups = (detail.groups || []).map((g) => byId.get(g) || { id: g, name: `${shortId(g)} (deleted)` });
  const groupRows = groups.sort(byName).map((g) => {
    const leave = button('Remove from group', null, { kind: 'danger', testid: 'leave-group', label: `Remove from ${g.name}` });
    leave.addEventListener('click', async () => {
      const ok = await confirmAction(`Remove “${detail.name}” from “${g.name}”?`, 'It can no longer use the group’s grants.', 'Remove from group');
      if (!ok) return;
      await busy(leave, async () => {
        try {
          await api.removeMember(g.id, detail.id);
          reload(['ok', `“${detail.name}” removed from “${g.name}”.`]);
        } catch (err) {
          showError(err, 'Could not change the membership');
        }
      });
    });
    return h('tr', { 'data-testid': 'group-row', 'data-principal-id': g.id },
      h('th', { scope: 'row' }, h('a', { href: `#/principals/${encodeURIComponent(g.id)}`, text: g.name })), h('td', { class: 'row-actions' }, leave));
  });
  const otherGroups = all.filter((p) => p.kind === 'group' && !(detail.groups || []).includes(p.id)).sort(byName);
  const groupSelect = h('select', { 'data-testid': 'group-select' },
    h('option', { value: '', text: 'Choose a group…' }), otherGroups.map((g) => h('option', { value: g.id, text: g.name })));
  const join = h('button', { type: 'submit', 'data-testid': 'join-group', text: 'Add to group' });
  const joinForm = h('form', { novalidate: true, class: 'inline-form', 'aria-label': 'Add to a group' },
    h('div', { class: 'row-inline' }, field({ label: 'Group', control: groupSelect }), join));
  joinForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!groupSelect.value) {
      setStatus('error', 'Choose a group.');
      return;
    }
    const g = byId.get(groupSelect.value);
    await busy(join, async () => {
      try {
        await api.addMember(groupSelect.value, detail.id);
        reload(['ok', `“${detail.name}” added to “${g ? g.name : groupSelect.value}”.`]);
      } catch (err) {
        showError(err, 'Could not change the membership');
      }
    });
  });

  const keysArea = h('div', {});
  const issuedArea = h('div', { 'aria-live': 'polite' });
  const drawKeys = async () => {
    const keys = await api.keysOf(detail.id);
    keys.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    const rows = keys.map((k) => {
      const revoke = k.revoked_at ? null : withScope(button('Revoke', null, { kind: 'danger', testid: 'revoke-key', label: `Revoke key ${k.prefix}` }), 'principals:write');
      if (revoke) {
        revoke.addEventListener('click', async () => {
          const ok = await confirmAction('Revoke this API key?', `The key cg_app_${k.prefix}_… ${k.name ? `(“${k.name}”) ` : ''}stops working from the next call. This cannot be undone.`, 'Revoke key');
          if (!ok) return;
          await busy(revoke, async () => {
            try {
              await api.revokeKey(k.id);
              setStatus('ok', `API key cg_app_${k.prefix}_… revoked.`);
              keysArea.textContent = '';
              keysArea.append(await drawKeys());
            } catch (err) {
              showError(err, 'Could not revoke the key');
            }
          });
        });
      }
      return h('tr', { 'data-testid': 'key-row', 'data-key-id': k.id, 'data-prefix': k.prefix },
        h('th', { scope: 'row' }, h('code', { text: `cg_app_${k.prefix}_…` })),
        h('td', { text: k.name || '' }),
        h('td', {}, keyStatus(k)),
        h('td', {}, timeEl(k.created_at)),
        h('td', {}, k.revoked_at ? ['revoked ', timeEl(k.revoked_at)] : timeEl(k.expires_at, 'never')),
        h('td', { class: 'row-actions' }, revoke));
    });
    return table({ caption: 'API keys', headers: ['Key', 'Name', 'Status', 'Created', 'Expires', 'Actions'], rows, testid: 'keys-table', empty: 'No API keys yet.' });
  };

  const keyName = h('input', { type: 'text', autocomplete: 'off', maxlength: '200', 'data-testid': 'key-name', placeholder: 'e.g. support-bot in production' });
  const keyDays = h('input', { type: 'number', min: '1', step: '1', 'data-testid': 'key-ttl-days' });
  const issue = h('button', { type: 'submit', 'data-testid': 'issue-key', text: 'Issue API key' });
  const issueForm = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'issue-key-title', 'data-scope': 'principals:write' },
    h('h3', { id: 'issue-key-title', text: 'Issue an API key' }),
    h('div', { class: 'grid' },
      field({ label: 'Key name', control: keyName, help: 'Optional label, e.g. the service that holds the key.' }),
      field({ label: 'Expires after (days)', control: keyDays, help: 'Optional; empty: the key lives until revoked.' })),
    h('div', { class: 'actions' }, issue));
  issueForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {};
    if (keyName.value.trim()) body.name = keyName.value.trim();
    if (keyDays.value) {
      const n = Number(keyDays.value);
      if (!Number.isInteger(n) || n < 1) {
        setStatus('error', 'The expiry must be a whole number of days, at least 1.');
        return;
      }
      body.ttl_seconds = n * 86400;
    }
    await busy(issue, async () => {
      try {
        const issued = await api.issueKey(detail.id, body);
        keyName.value = '';
        keyDays.value = '';
        issuedArea.textContent = '';
        issuedArea.append(issuedKeyPanel(issued, detail, () => { issuedArea.textContent = ''; issue.focus(); }));
        setStatus('ok', `API key cg_app_${issued.prefix}_… issued to “${detail.name}”. Copy it now: it is shown only once.`);
        keysArea.textContent = '';
        keysArea.append(await drawKeys());
      } catch (err) {
        showError(err, 'The key was not issued');
      }
    });
  });

  keysArea.append(await drawKeys());
  section.append(
    h('h2', { text: 'API keys' }),
    h('p', { class: 'help', text: 'Apps authenticate to the data plane with Proxy-Authorization: Bearer <API key>. credgate keeps only a hash of each key.' }),
    issueForm, issuedArea, keysArea,
    h('h2', { text: 'Groups' }),
    table({ caption: 'Groups', headers: ['Group', 'Actions'], rows: groupRows, testid: 'groups-table', empty: 'Not a member of any group.' }),
    otherGroups.length ? joinForm : null);
  return section;
}

function issuedKeyPanel(issued, principal, onDone) {
  const copy = button('Copy key', () => copyText(issued.key, 'API key'), { kind: 'secondary', testid: 'copy-key' });
  const done = button('I have stored it — hide the key', onDone, { kind: 'secondary', testid: 'hide-key' });
  return h('section', { class: 'card issued warn', 'data-testid': 'issued-key', 'aria-labelledby': 'issued-key-title' },
    h('h3', { id: 'issued-key-title', text: `New API key for “${principal.name}”` }),
    h('p', { class: 'warning', 'data-testid': 'issued-key-warning', text: 'Copy this key now and store it where the app reads its secrets. It is shown only this once: credgate keeps only a hash, and it cannot be shown again. If it is lost, revoke it and issue another.' }),
    h('p', {}, h('code', { class: 'big', 'data-testid': 'issued-key-value', text: issued.key })),
    h('div', { class: 'actions' }, copy, done));
}
