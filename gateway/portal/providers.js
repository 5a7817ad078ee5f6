// Providers: every type the gateway serves; upload, disable, enable, remove.

import { api, ApiError } from './api.js';
import {
  h,
  field,
  button,
  table,
  timeEl,
  badge,
  safeHttpUrl,
  setStatus,
  showError,
  confirmAction,
  busy,
  pageHeader,
  navigate,
  withScope,
} from './ui.js';

export async function pageProviders() {
  const providers = await api.providers();
  providers.sort((a, b) => (a.source === b.source ? a.display_name.localeCompare(b.display_name) : a.source === 'uploaded' ? -1 : b.source === 'uploaded' ? 1 : a.source.localeCompare(b.source)));
  const file = h('input', { type: 'file', accept: '.wasm,application/wasm', 'data-testid': 'provider-file' });
  const upload = h('button', { type: 'submit', 'data-testid': 'upload-provider', text: 'Upload' });
  const form = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'upload-title', 'data-scope': 'providers:write' },
    h('h2', { id: 'upload-title', text: 'Upload a provider' }),
    field({ label: 'Provider component (.wasm)', control: file, help: 'A WebAssembly component implementing credgate:provider@0.2.0 (or 0.1.0). It is compiled and checked before anything changes; an upload with the id of an earlier upload replaces it (calls in flight finish on the old one).' }),
    h('div', { class: 'actions' }, upload));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const chosen = file.files && file.files[0];
    if (!chosen) {
      setStatus('error', 'Choose a .wasm file to upload.');
      file.focus();
      return;
    }
    await busy(upload, async () => {
      let bytes;
      try {
        bytes = new Uint8Array(await chosen.arrayBuffer());
      } catch {
        setStatus('error', `Could not read the file “${chosen.name}”.`);
        return;
      }
      try {
        const detail = await api.uploadProvider(bytes);
        const replaced = providers.some((p) => p.id === detail.id && p.source === 'uploaded');
        file.value = '';
        navigate('#/providers', ['ok', `Provider “${detail.display_name}” (${detail.id}) version ${detail.version} ${replaced ? 'replaced the earlier upload' : 'uploaded'}; digest ${detail.digest.slice(0, 16)}….`]);
      } catch (err) {
        file.value = '';
        showError(err, `The upload of “${chosen.name}” was refused`);
      }
    });
  });

  const headers = ['Provider', 'Version', 'Source', 'Digest', 'Status', 'Actions'];
  const rows = [];
  for (const p of providers) {
    const details = button('Details', null, { kind: 'secondary', testid: 'provider-details', label: `Details of ${p.display_name}` });
    details.setAttribute('aria-expanded', 'false');
    const native = p.source === 'native';
    const toggle = native ? null : p.disabled
      ? withScope(button('Enable', null, { kind: 'secondary', testid: 'enable-provider', label: `Enable ${p.display_name}` }), 'providers:write')
      : withScope(button('Disable', null, { kind: 'secondary', testid: 'disable-provider', label: `Disable ${p.display_name}` }), 'providers:write');
    const remove = p.source === 'uploaded' ? withScope(button('Remove', null, { kind: 'danger', testid: 'remove-provider', label: `Remove ${p.display_name}` }), 'providers:write') : null;
    const row = h('tr', { 'data-testid': 'provider-row', 'data-provider-id': p.id, 'data-name': String(p.display_name).toLowerCase(), 'data-source': p.source, 'data-disabled': String(p.disabled) },
      h('th', { scope: 'row' }, h('span', { class: 'name', text: p.display_name }), h('br'), h('code', { text: p.id })),
      h('td', { 'data-col': 'version', text: p.version }),
      h('td', { 'data-col': 'source' }, badge(p.source, p.source === 'uploaded' ? 'info' : ''),
        p.overrides && p.overrides.length ? h('span', { class: 'muted', text: ` overrides ${p.overrides.join(', ')}` }) : null,
        p.loaded_at ? [h('br'), h('span', { class: 'muted', text: 'loaded ' }), timeEl(p.loaded_at)] : null),
      h('td', {}, p.digest
        ? [h('code', { class: 'id', title: p.digest, text: `${p.digest.slice(0, 12)}…` }), h('br'), h('span', { class: 'muted', text: `${Math.round(p.size / 1024)} KiB` })]
        : h('span', { class: 'muted', text: 'built in' })),
      h('td', { 'data-col': 'status' }, p.disabled ? badge('disabled', 'bad') : badge('enabled', 'ok')),
      h('td', { class: 'row-actions' }, details, toggle, remove));
    rows.push(row);
    details.addEventListener('click', async () => {
      const next = row.nextElementSibling;
      if (next && next.dataset.testid === 'provider-detail-row') {
        next.remove();
        details.setAttribute('aria-expanded', 'false');
        return;
      }
      await busy(details, async () => {
        try {
          const detail = await api.provider(p.id);
          row.after(h('tr', { 'data-testid': 'provider-detail-row' }, h('td', { colspan: String(headers.length) }, describeProvider(detail))));
          details.setAttribute('aria-expanded', 'true');
        } catch (err) {
          showError(err, `Could not load ${p.id}`);
        }
      });
    });
    if (toggle) toggle.addEventListener('click', () => busy(toggle, async () => {
      try {
        if (p.disabled) {
          await api.enableProvider(p.id);
          navigate('#/providers', ['ok', `Provider ${p.id} enabled.`]);
          return;
        }
        const ok = await confirmAction(`Disable ${p.display_name}?`, `Provider ${p.id} stops serving: new secrets of this type are refused and calls through existing ones fail with provider_error until it is enabled again.`, 'Disable');
        if (!ok) return;
        try {
          await api.disableProvider(p.id, false);
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 409)) throw err;
          const force = await confirmAction(`Disable ${p.display_name} anyway?`, `credgate refused: ${err.message}`, 'Disable anyway');
          if (!force) {
            showError(err, `${p.id} was not disabled`);
            return;
          }
          await api.disableProvider(p.id, true);
        }
        navigate('#/providers', ['ok', `Provider ${p.id} disabled.`]);
      } catch (err) {
        showError(err, `Could not change ${p.id}`);
      }
    }));
    if (remove) {
      remove.addEventListener('click', () => busy(remove, async () => {
        const fallback = (p.overrides || []).length ? ` The ${p.overrides[0]} component with this id serves again.` : ' No other component has this id, so secrets of this type would fail.';
        const ok = await confirmAction(`Remove the uploaded ${p.display_name}?`, `Provider ${p.id} version ${p.version} is removed from every replica.${fallback}`, 'Remove');
        if (!ok) return;
        try {
          try {
            await api.removeProvider(p.id, false);
          } catch (err) {
            if (!(err instanceof ApiError && err.status === 409 && /force/.test(err.message))) throw err;
            const force = await confirmAction(`Remove ${p.display_name} anyway?`, `credgate refused: ${err.message}`, 'Remove anyway');
            if (!force) {
              showError(err, `${p.id} was not removed`);
              return;
            }
            await api.removeProvider(p.id, true);
          }
          navigate('#/providers', ['ok', `Uploaded provider ${p.id} removed.`]);
        } catch (err) {
          showError(err, `Could not remove ${p.id}`);
        }
      }));
    }
  }
  const filter = h('input', { type: 'search', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'provider-filter', placeholder: 'id or name' });
  const counter = h('span', { class: 'muted', 'aria-live': 'polite' });
  filter.addEventListener('input', () => {
    const needle = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      const match = !needle || row.dataset.providerId.includes(needle) || (row.dataset.name || '').includes(needle);
      row.hidden = !match;
      const next = row.nextElementSibling;
      if (next && next.dataset.testid === 'provider-detail-row') next.hidden = !match;
      if (match) shown += 1;
    }
    counter.textContent = needle ? `${shown} of ${rows.length} shown.` : '';
  });
  return h('section', {},
    pageHeader('Providers', 'How credentials are injected by template: bundled components, components from the watched plugins directory, and uploads. For each id the upload is active if there is one, else the directory’s, else the bundled one.'),
    form,
    h('h2', { text: `All providers (${providers.length})` }),
    h('div', { class: 'toolbar' }, field({ label: 'Find a provider', control: filter }), counter),
    table({ caption: 'Providers', headers, rows, testid: 'providers-table', empty: 'No providers are loaded.' }));
}

function fieldList(fields) {
  if (!fields.length) return h('p', { class: 'muted', text: 'none' });
  return h('ul', { class: 'plain' }, fields.map((f) => h('li', {},
    h('code', { text: f.name }), ` — ${f.label}`,
    f.required ? h('span', { class: 'req', text: ' (required)' }) : h('span', { class: 'muted', text: ' (optional)' }),
    h('span', { class: 'kind', text: ` · ${f.kind}` }),
    f.allowed_values && f.allowed_values.length ? h('span', { class: 'muted', text: ` · one of ${f.allowed_values.join(', ')}` }) : null,
    f.default_value ? h('span', { class: 'muted', text: ` · default ${f.default_value}` }) : null,
    f.help ? h('span', { class: 'muted', text: ` · ${f.help}` }) : null)));
}

function describeProvider(detail) {
  const d = detail.description;
  const docs = safeHttpUrl(d.docs_url);
  return h('div', { class: 'provider-detail' },
    h('dl', { class: 'facts' },
      h('dt', { text: 'Id and version' }), h('dd', { text: `${d.id} ${d.version}` }),
      detail.digest ? [h('dt', { text: 'Digest (SHA-256)' }), h('dd', {}, h('code', { class: 'wrap', text: detail.digest }))] : null,
      h('dt', { text: 'Base URL' }), h('dd', {}, d.base_url ? h('code', { text: d.base_url }) : h('span', { class: 'muted', text: 'none (set base_url in the secret)' })),
      h('dt', { text: 'Default hosts' }), h('dd', { text: d.default_hosts.length ? d.default_hosts.join(', ') : 'none' }),
      h('dt', { text: 'Docs' }), h('dd', {}, docs ? h('a', { href: docs, rel: 'noopener noreferrer', target: '_blank', text: d.docs_url }) : h('span', { class: 'muted', text: 'none' }))),
    h('h4', { text: `Credential fields${d.open_credential_fields ? ' (any others allowed)' : ''}` }), fieldList(d.credential_fields),
    h('h4', { text: 'Config fields' }), fieldList(d.config_fields));
}
