// Secrets: the list, and adding one of any type with the fields the gateway describes for it.

import { api } from './api.js';
import {
  h,
  uid,
  field,
  checkbox,
  secretInput,
  button,
  linkButton,
  table,
  timeEl,
  badge,
  idCode,
  safeHttpUrl,
  byName,
  setStatus,
  showError,
  confirmAction,
  busy,
  pageHeader,
  navigate,
  withScope,
} from './ui.js';

/** The native types: credential fields and config fields. */
function providerLabel(type, providers) {
  const p = providers.get(type);
  if (!p) return `${type} (not loaded)`;
  if (p.source === 'native') return 'native';
  return `${p.display_name} · ${p.id} v${p.version}${p.disabled ? ' (disabled)' : ''}`;
}

export async function pageSecrets(ctx, parts) {
  if (parts[0] === 'new') return pageAddSecret(ctx);
  const [secrets, providerList] = await Promise.all([api.secrets(), api.providers().catch(() => [])]);
  const providers = new Map(providerList.map((p) => [p.id, p]));
  const section = h('section', {},
    pageHeader('Managed secrets', 'Credentials are write-only: credgate never shows a value again. Rotate to replace one; grant ids stay the same.',
      withScope(linkButton('Add secret', '#/secrets/new', 'add-secret'), 'secrets:write')));
  const headers = ['Name', 'Type', 'Provider', 'Version', 'Allowed hosts', 'Active grants', 'Last used', 'Actions'];
  const rows = [];
  for (const s of [...secrets].sort(byName)) {
    const rotateBtn = withScope(button('Rotate', null, { kind: 'secondary', testid: 'rotate-secret', label: `Rotate ${s.name}` }), 'secrets:write');
    const deleteBtn = withScope(button('Delete', null, { kind: 'danger', testid: 'delete-secret', label: `Delete ${s.name}` }), 'secrets:write');
    const row = h('tr', { 'data-testid': 'secret-row', 'data-secret-id': s.id },
      h('th', { scope: 'row', 'data-col': 'name' }, h('span', { class: 'name', text: s.name }), h('br'), idCode(s.id)),
      h('td', { 'data-col': 'type' }, h('code', { text: s.type })),
      h('td', { 'data-col': 'provider', text: providerLabel(s.type, providers) }),
      h('td', { 'data-col': 'version', text: String(s.version) }),
      h('td', { 'data-col': 'hosts' },
        h('span', { text: (s.allowed_hosts || []).join(', ') }),
        s.allow_private_destinations ? [' ', badge('private allowed', 'warn')] : null,
        s.allow_insecure_http ? [' ', badge('http allowed', 'warn')] : null,
        s.redact_responses ? [' ', badge('bodies scrubbed', 'info')] : null),
      h('td', { 'data-col': 'grants', text: String(s.active_grants ?? 0) }),
      h('td', { 'data-col': 'last-used' }, s.last_used_at ? timeEl(s.last_used_at) : h('span', { class: 'muted', text: s.last_used_at === null ? 'never' : 'unknown' })),
      h('td', { class: 'row-actions' },
        h('a', { href: `#/grants/${encodeURIComponent(s.id)}`, 'data-testid': 'secret-grants', 'aria-label': `Grants of ${s.name}`, text: 'Grants' }),
        rotateBtn, deleteBtn));
    rows.push(row);
    rotateBtn.addEventListener('click', () => {
      const open = row.nextElementSibling && row.nextElementSibling.dataset.testid === 'rotate-row';
      if (open) {
        row.nextElementSibling.remove();
        rotateBtn.setAttribute('aria-expanded', 'false');
        return;
      }
      rotateBtn.setAttribute('aria-expanded', 'true');
      row.after(rotateForm(s, headers.length, () => {
        rotateBtn.setAttribute('aria-expanded', 'false');
        rotateBtn.focus();
      }));
      const first = row.nextElementSibling.querySelector('input');
      if (first) first.focus();
    });
    deleteBtn.addEventListener('click', async () => {
      const ok = await confirmAction(`Delete the secret “${s.name}”?`,
        `Its value is destroyed and its ${s.active_grants ?? 0} active grant(s) stop working at once. This cannot be undone.`,
        'Delete secret');
      if (!ok) return;
      await busy(deleteBtn, async () => {
        try {
          await api.deleteSecret(s.id);
          navigate('#/secrets', ['ok', `Secret “${s.name}” deleted; its grants no longer work.`]);
        } catch (err) {
          showError(err, `Could not delete “${s.name}”`);
        }
      });
    });
  }
  section.append(table({ caption: 'Managed secrets', headers, rows, testid: 'secrets-table', empty: 'No secrets yet. Add one to issue grants of it.' }));
  return section;
}

function rotateForm(secret, colspan, onClose) {
  const fields = (secret.credential_fields && secret.credential_fields.length ? secret.credential_fields : ['token']);
  const inputs = fields.map((name) => [name, secretInput(`rotate-${name}`)]);
  const submit = h('button', { type: 'submit', 'data-testid': 'rotate-submit', text: `Rotate to version ${secret.version + 1}` });
  const cancel = button('Cancel', null, { kind: 'secondary', testid: 'rotate-cancel' });
  const form = h('form', { novalidate: true, class: 'inline-form', 'aria-label': `Rotate ${secret.name}` },
    h('fieldset', {},
      h('legend', { text: `New value for “${secret.name}”` }),
      h('p', { class: 'help', text: 'Enter every field of the credential. The current value is destroyed; every grant keeps its id and uses the new value from the next call.' }),
      h('div', { class: 'grid' }, inputs.map(([name, input]) => field({ label: `New ${name}`, control: input }))),
      h('div', { class: 'actions' }, submit, cancel)));
  const tr = h('tr', { class: 'inline-form-row', 'data-testid': 'rotate-row' }, h('td', { colspan: String(colspan) }, form));
  const close = () => {
    for (const [, input] of inputs) input.value = '';
    tr.remove();
    onClose();
  };
  cancel.addEventListener('click', close);
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') close();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const credential = {};
    for (const [name, input] of inputs) {
      if (input.value !== '' || name === 'password') credential[name] = input.value;
      input.value = '';
    }
    if (!Object.values(credential).some((v) => v !== '')) {
      setStatus('error', 'Enter the new value before rotating.');
      return;
    }
    await busy(submit, async () => {
      try {
        const updated = await api.rotateSecret(secret.id, credential);
        navigate('#/secrets', ['ok', `Secret “${secret.name}” rotated to version ${updated.version}. Its grants use the new value from the next call.`]);
      } catch (err) {
        showError(err, `Could not rotate “${secret.name}”`);
      }
    });
  });
  return tr;
}

export async function pageAddSecret(ctx) {
  // Native types and templates alike come from the gateway, with the fields each takes.
  const providerList = await api.providers();
  const natives = providerList.filter((p) => p.source === 'native');
  const templates = providerList.filter((p) => p.source !== 'native' && p.id !== 'custom').sort((a, b) => a.display_name.localeCompare(b.display_name));
  const custom = providerList.find((p) => p.id === 'custom');
  const descriptions = new Map();

  const nameInput = h('input', { type: 'text', autocomplete: 'off', 'data-testid': 'secret-name', maxlength: '200' });
  const typeSelect = h('select', { 'data-testid': 'secret-type' },
    h('option', { value: '', text: 'Choose a type…' }),
    h('optgroup', { label: 'Native' }, natives.map((p) => h('option', { value: p.id, text: `${p.display_name} (${p.id})` }))),
    h('optgroup', { label: 'Provider templates' }, templates.map((p) =>
      h('option', { value: p.id, disabled: p.disabled, text: `${p.display_name} (${p.id})${p.disabled ? ' — disabled' : ''}` }))),
    custom ? h('optgroup', { label: 'Custom' }, h('option', { value: 'custom', disabled: custom.disabled, text: 'Custom: headers and query parameters you configure (custom)' })) : null);
  const typeArea = h('div', { class: 'type-area', 'data-testid': 'type-area', 'aria-live': 'polite' });
  const hostsInput = h('textarea', { rows: '2', 'data-testid': 'allowed-hosts', autocomplete: 'off', spellcheck: 'false' });
  const priv = checkbox({ label: 'Allow private destinations', testid: 'allow-private', help: 'Loopback, private and link-local addresses (for internal APIs). Off by default.' });
  const insecure = checkbox({ label: 'Allow plain http', testid: 'allow-http', help: 'Send the credential over unencrypted http. Off by default.' });
  const redact = checkbox({ label: 'Scrub response bodies', testid: 'redact-responses', help: 'For upstreams that echo requests: remove the credential from response bodies as they stream (headers are always scrubbed). Off by default.' });
  const submit = h('button', { type: 'submit', 'data-testid': 'create-secret', text: 'Create secret' });
  let current = null; // { type, readCredential, readConfig, clear }

  const form = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'add-secret-title' },
    h('div', { class: 'grid' },
      field({ label: 'Name', control: nameInput, required: true, help: 'Unique; shown in lists and the audit trail. Not secret.' }),
      field({ label: 'Type', control: typeSelect, required: true, help: 'How the credential is injected.' })),
    typeArea,
    h('fieldset', {},
      h('legend', { text: 'Destinations' }),
      field({ label: 'Allowed hosts', control: hostsInput, wide: true,
        help: 'One per line or comma-separated: name, name:port or *.suffix. Empty: the template’s default hosts, or the base URL’s host.' }),
      priv.el, insecure.el, redact.el),
    h('div', { class: 'actions' }, submit, linkButton('Cancel', '#/secrets', 'cancel-secret', 'secondary')));

  typeSelect.addEventListener('change', async () => {
    const type = typeSelect.value;
    if (current) current.clear();
    current = null;
    typeArea.textContent = '';
    if (!type) return;
    try {
      if (!descriptions.has(type)) {
        typeArea.append(h('p', { class: 'loading', text: 'Loading the type’s fields…' }));
        descriptions.set(type, await api.provider(type));
      }
      if (typeSelect.value !== type) return;
      const detail = descriptions.get(type);
      current = detail.source === 'native' ? nativeSection(detail) : templateSection(detail);
      typeArea.textContent = '';
      typeArea.append(current.el);
    } catch (err) {
      typeArea.textContent = '';
      showError(err, 'Could not load the template');
    }
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!current) {
      setStatus('error', typeSelect.value ? 'The type’s fields are still loading.' : 'Choose a type first.');
      return;
    }
    let credential;
    let config;
    try {
      credential = current.readCredential(); // clears the inputs
      config = current.readConfig();
    } catch (problem) {
      current.clear();
      setStatus('error', `${problem.message} Credential fields were cleared; enter them again.`);
      return;
    }
    const body = {
      name: nameInput.value.trim(),
      type: current.type,
      credential,
      config,
      allowed_hosts: hostsInput.value.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean),
      allow_private_destinations: priv.input.checked,
      allow_insecure_http: insecure.input.checked,
      redact_responses: redact.input.checked,
    };
    await busy(submit, async () => {
      try {
        const created = await api.createSecret(body);
        navigate('#/secrets', ['ok', `Secret “${created.name}” created (type ${created.type}, version ${created.version}, allowed hosts ${created.allowed_hosts.join(', ')}). Issue grants of it from its Grants link.`]);
      } catch (err) {
        showError(err, 'The secret was not created (credential fields were cleared; enter them again)');
      }
    });
  });

  return h('section', {},
    pageHeader('Add a secret', 'The value is sent once to credgate, stored encrypted, and never shown again.'),
    h('h2', { id: 'add-secret-title', class: 'visually-hidden', text: 'New secret' }),
    form);
}

/** Inputs for a list of credential fields: all password fields. */
function credentialFieldset(specs, { extraRows = false } = {}) {
  const inputs = specs.map((spec) => {
    const input = secretInput(`cred-${spec.name}`);
    return { spec, input, el: field({ label: spec.label || spec.name, control: input, required: spec.required, kind: spec.kind && spec.kind !== 'text' ? spec.kind : null, help: [spec.label && spec.name !== spec.label ? `Credential field “${spec.name}”.` : '', spec.help].filter(Boolean).join(' ') || null }) };
  });
  const extra = [];
  const extraList = h('div', { class: 'rows' });
  const addExtra = () => {
    const nameInput = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'cred-extra-name' });
    const valueInput = secretInput('cred-extra-value');
    const entry = { nameInput, valueInput };
    const remove = button('Remove', () => {
      valueInput.value = '';
      extra.splice(extra.indexOf(entry), 1);
      row.remove();
    }, { kind: 'secondary small', label: 'Remove this credential field' });
    const row = h('div', { class: 'row-inline' },
      field({ label: 'Field name', control: nameInput }), field({ label: 'Value', control: valueInput }), remove);
    entry.row = row;
    extra.push(entry);
    extraList.append(row);
    nameInput.focus();
  };
  const el = h('fieldset', {},
    h('legend', { text: 'Credential (write-only)' }),
    h('div', { class: 'grid' }, inputs.map((i) => i.el)),
    extraRows ? [
      h('p', { class: 'help', text: 'This type takes any credential fields: name each one and give its value. Formats refer to them as {name}.' }),
      extraList,
      button('Add a credential field', addExtra, { kind: 'secondary', testid: 'add-credential-field' }),
    ] : null);
  if (extraRows && !specs.length) addExtra();
  return {
    el,
    read() {
      const credential = {};
      for (const { spec, input } of inputs) {
        const v = input.value;
        input.value = '';
        if (v !== '' || (spec.required && spec.allow_empty)) credential[spec.name] = v;
      }
      for (const { nameInput, valueInput } of extra) {
        const name = nameInput.value.trim();
        const v = valueInput.value;
        valueInput.value = '';
        if (name) credential[name] = v;
      }
      return credential;
    },
    clear() {
      for (const { input } of inputs) input.value = '';
      for (const { valueInput } of extra) valueInput.value = '';
    },
  };
}

function textInput(testid, placeholder) {
  return h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-testid': testid, placeholder });
}

/** A native type: its credential and config fields as the gateway describes them; an API key
 * chooses between its two exclusive places (a header with a format, or a query parameter). */
function nativeSection(detail) {
  const d = detail.description;
  const type = d.id;
  const apiKey = d.config_fields.some((f) => f.name === 'header') && d.config_fields.some((f) => f.name === 'query_param');
  const cred = credentialFieldset(d.credential_fields);
  const baseUrl = textInput('config-base_url', 'https://api.example.com');
  const configFields = [];
  const extraConfig = [];
  let readMode = () => ({});
  if (apiKey) {
    const header = textInput('config-header', 'x-api-key');
    const format = textInput('config-format', '{token}');
    const param = textInput('config-query_param', 'api_key');
    const modeName = uid('mode');
    const headerRadio = h('input', { type: 'radio', name: modeName, value: 'header', id: uid('r'), checked: true, 'data-testid': 'api-key-mode-header' });
    const queryRadio = h('input', { type: 'radio', name: modeName, value: 'query', id: uid('r'), 'data-testid': 'api-key-mode-query' });
    const headerPart = h('div', { class: 'grid' },
      field({ label: 'Header name', control: header, required: true }),
      field({ label: 'Format', control: format, help: 'Optional; must contain {token} once, e.g. “Token {token}”. Default: {token}.' }));
    const queryPart = h('div', { class: 'grid', hidden: true },
      field({ label: 'Query parameter', control: param, required: true, help: 'Redacted in the audit trail.' }));
    const sync = () => {
      headerPart.hidden = !headerRadio.checked;
      queryPart.hidden = !queryRadio.checked;
    };
    headerRadio.addEventListener('change', sync);
    queryRadio.addEventListener('change', sync);
    extraConfig.push(h('fieldset', { class: 'nested' },
      h('legend', { text: 'Send the key in' }),
      h('div', { class: 'check' }, headerRadio, h('label', { for: headerRadio.id, text: 'a header' })),
      h('div', { class: 'check' }, queryRadio, h('label', { for: queryRadio.id, text: 'a query parameter' })),
      headerPart, queryPart));
    readMode = () => {
      if (queryRadio.checked) return { query_param: param.value.trim() };
      const out = { header: header.value.trim() };
      if (format.value.trim()) out.format = format.value.trim();
      return out;
    };
  }
  for (const f of d.config_fields) {
    if (apiKey) continue;
    const input = textInput(`config-${f.name}`, '');
    configFields.push([f.name, input]);
    extraConfig.push(field({ label: f.label || f.name, control: input, help: f.help || null }));
  }
  const el = h('div', {},
    h('p', { class: 'help', text: `${d.display_name}: a native injector that runs in the gateway.` }),
    cred.el,
    h('fieldset', {},
      h('legend', { text: 'Configuration' }),
      extraConfig,
      h('div', { class: 'grid' },
        field({ label: 'Base URL', control: baseUrl, kind: 'url', help: 'Optional: for base-URL mode (/v1/grants/<grant id>/…). Its host becomes the default allowed host.' }))));
  return {
    type,
    el,
    readCredential: () => cred.read(),
    readConfig() {
      const config = readMode();
      for (const [name, input] of configFields) if (input.value.trim()) config[name] = input.value.trim();
      if (baseUrl.value.trim()) config.base_url = baseUrl.value.trim();
      return config;
    },
    clear: () => cred.clear(),
  };
}

function templateSection(detail) {
  const d = detail.description;
  const isCustom = d.id === 'custom';
  const cred = credentialFieldset(d.credential_fields, { extraRows: d.open_credential_fields });
  const controls = [];
  const configEls = [];
  for (const f of d.config_fields) {
    if (isCustom && (f.name === 'headers' || f.name === 'query')) continue;
    let control;
    if (f.allowed_values && f.allowed_values.length) {
      control = h('select', { 'data-testid': `config-${f.name}` },
        f.required && !f.default_value ? null : h('option', { value: '', text: f.default_value ? `Default (${f.default_value})` : 'Not set' }),
        f.allowed_values.map((v) => h('option', { value: v, text: v })));
    } else if (f.kind === 'json') {
      control = h('textarea', { rows: '3', spellcheck: 'false', 'data-testid': `config-${f.name}` });
    } else {
      control = textInput(`config-${f.name}`, f.default_value ? `default: ${f.default_value}` : '');
    }
    controls.push([f, control]);
    configEls.push(field({
      label: f.label || f.name,
      control,
      required: f.required && !f.default_value,
      kind: f.kind,
      help: [f.label && f.name !== f.label ? `Config key “${f.name}”.` : '', f.help, f.default_value ? `Default: ${f.default_value}.` : ''].filter(Boolean).join(' ') || null,
    }));
  }
  const baseUrl = textInput('config-base_url', d.base_url || 'https://api.example.com');
  configEls.push(field({
    label: 'Base URL',
    control: baseUrl,
    kind: 'url',
    help: d.base_url
      ? `Optional: leave empty for the template’s ${d.base_url}. Set it to point the template elsewhere (a proxy, a regional endpoint); the allowed hosts then default to its host.`
      : 'Optional: for base-URL mode (/v1/grants/<grant id>/…).',
  }));
  let customRules = null;
  if (isCustom) customRules = customRulesEditor();
  const facts = h('dl', { class: 'facts' },
    h('dt', { text: 'Template' }), h('dd', { text: `${d.display_name} (${d.id}) version ${d.version}` }),
    d.base_url ? [h('dt', { text: 'Base URL' }), h('dd', {}, h('code', { text: d.base_url }))] : null,
    d.default_hosts && d.default_hosts.length ? [h('dt', { text: 'Default hosts' }), h('dd', { text: d.default_hosts.join(', ') })] : null,
    safeHttpUrl(d.docs_url) ? [h('dt', { text: 'Docs' }), h('dd', {}, h('a', { href: safeHttpUrl(d.docs_url), rel: 'noopener noreferrer', target: '_blank', text: d.docs_url }))] : null);
  const el = h('div', {},
    facts,
    cred.el,
    customRules ? customRules.el : null,
    h('fieldset', {}, h('legend', { text: 'Configuration' }), h('div', { class: 'grid' }, configEls)));
  return {
    type: d.id,
    el,
    readCredential: () => cred.read(),
    readConfig() {
      const config = {};
      for (const [f, control] of controls) {
        const v = control.value.trim();
        if (!v) continue;
        if (f.kind === 'json') {
          try {
            config[f.name] = JSON.parse(v);
          } catch {
            throw new Error(`Config ${f.name} must be valid JSON.`);
          }
        } else {
          config[f.name] = v;
        }
      }
      if (customRules) Object.assign(config, customRules.read());
      if (baseUrl.value.trim()) config.base_url = baseUrl.value.trim();
      return config;
    },
    clear: () => cred.clear(),
  };
}

/** Custom's headers and query parameters: rows of name and format. */
function customRulesEditor() {
  const lists = { headers: [], query: [] };
  const makeList = (key, title, placeholderName, testid) => {
    const container = h('div', { class: 'rows', 'data-testid': `custom-${key}` });
    const add = () => {
      const name = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: placeholderName, 'data-testid': `${testid}-name` });
      const format = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'Bearer {token}', 'data-testid': `${testid}-format` });
      const entry = { name, format };
      const row = h('div', { class: 'row-inline' },
        field({ label: key === 'headers' ? 'Header name' : 'Parameter name', control: name }),
        field({ label: 'Format', control: format }),
        button('Remove', () => {
          lists[key].splice(lists[key].indexOf(entry), 1);
          row.remove();
        }, { kind: 'secondary small', label: `Remove this ${key === 'headers' ? 'header' : 'query parameter'}` }));
      lists[key].push(entry);
      container.append(row);
      name.focus();
    };
    return h('fieldset', { class: 'nested' }, h('legend', { text: title }), container,
      button(key === 'headers' ? 'Add a header' : 'Add a query parameter', add, { kind: 'secondary', testid: `add-${testid}` }));
  };
  const el = h('fieldset', {},
    h('legend', { text: 'Injections' }),
    h('p', { class: 'help', text: 'Each header or query parameter gets a format: text with placeholders. {field} is a credential field’s whole value; {base64:a:b} is base64 of “a:b” (for Basic-style schemes); {{ and }} are literal braces. Examples: “Bearer {token}”, “Token {token}”, “Key {api_key}”, “Basic {base64:user:password}”.' }),
    makeList('headers', 'Headers', 'x-api-key', 'custom-header'),
    makeList('query', 'Query parameters', 'api_key', 'custom-query'));
  return {
    el,
    read() {
      const out = {};
      for (const key of ['headers', 'query']) {
        const rules = lists[key]
          .map(({ name, format }) => ({ name: name.value.trim(), format: format.value }))
          .filter((r) => r.name || r.format);
        if (rules.length) out[key] = rules;
      }
      return out;
    },
  };
}
