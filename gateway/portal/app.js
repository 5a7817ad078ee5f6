// The credgate operator portal: one page, hash routes, the admin API only.
//
// Every piece of data is put into the page with textContent or setAttribute on elements made
// with document.createElement: a hostile name cannot become markup. Credential values are
// typed into password fields, read once when the form is sent, and cleared at once; they are
// never shown, stored or logged.

import {
  api,
  ApiError,
  describeError,
  getToken,
  setToken,
  clearSession,
  setUnauthenticatedHandler,
} from './api.js';

// ---- DOM helpers ---------------------------------------------------------------------------

/** Makes an element. `props`: class, text, on<Event> handlers, properties value/checked, or
 * attributes (set with setAttribute, so never parsed as markup). Children: nodes or text. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = String(value);
    else if (/^on[A-Z]/.test(key) && typeof value === 'function') el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === 'value') el.value = value;
    else if (key === 'checked') el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

let uidCounter = 0;
function uid(prefix) {
  uidCounter += 1;
  return `${prefix}-${uidCounter}`;
}

/** A labelled form control with optional help text, required marker and value kind. */
function field({ label, control, help, required, kind, testid, wide }) {
  const id = control.id || uid('f');
  control.id = id;
  if (testid && !control.hasAttribute('data-testid')) control.setAttribute('data-testid', testid);
  const children = [
    h('label', { for: id }, label,
      required ? h('span', { class: 'req', text: ' (required)' }) : null,
      kind ? h('span', { class: 'kind', text: ` · ${kind}` }) : null),
    control,
  ];
  if (help) {
    const helpId = uid('help');
    control.setAttribute('aria-describedby', helpId);
    children.push(h('p', { class: 'help', id: helpId, text: help }));
  }
  if (required) control.setAttribute('aria-required', 'true');
  return h('div', { class: wide ? 'field wide' : 'field' }, children);
}

function checkbox({ label, testid, checked, help }) {
  const input = h('input', { type: 'checkbox', id: uid('c'), 'data-testid': testid, checked });
  const helpEl = help ? h('p', { class: 'help', id: uid('help'), text: help }) : null;
  if (helpEl) input.setAttribute('aria-describedby', helpEl.id);
  return { input, el: h('div', { class: 'check' }, input, h('label', { for: input.id, text: label }), helpEl) };
}

/** A credential input: a password field that browsers do not fill or remember. */
function secretInput(testid) {
  return h('input', {
    type: 'password',
    autocomplete: 'off',
    autocapitalize: 'off',
    spellcheck: 'false',
    'data-testid': testid,
    'data-credential': 'true',
  });
}

function button(text, onClick, { kind = '', testid, type = 'button', label } = {}) {
  return h('button', { type, class: kind, 'data-testid': testid, 'aria-label': label, onClick }, text);
}

function linkButton(text, href, testid, kind = '') {
  return h('a', { class: `button ${kind}`.trim(), href, 'data-testid': testid }, text);
}

function table({ caption, headers, rows, testid, empty }) {
  if (!rows.length) return h('p', { class: 'empty', 'data-testid': testid ? `${testid}-empty` : undefined, text: empty || 'Nothing here yet.' });
  return h('div', { class: 'table-wrap' },
    h('table', { 'data-testid': testid },
      caption ? h('caption', { class: 'visually-hidden', text: caption }) : null,
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, rows)));
}

function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
}

function relative(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const secs = Math.round((d.getTime() - Date.now()) / 1000);
  const abs = Math.abs(secs);
  const [n, unit] = abs < 90 ? [abs, 'second'] : abs < 5400 ? [Math.round(abs / 60), 'minute']
    : abs < 129600 ? [Math.round(abs / 3600), 'hour'] : [Math.round(abs / 86400), 'day'];
  const text = `${n} ${unit}${n === 1 ? '' : 's'}`;
  return secs >= 0 ? `in ${text}` : `${text} ago`;
}

function timeEl(iso, fallback = '') {
  if (!iso) return h('span', { class: 'muted', text: fallback });
  return h('time', { datetime: iso }, fmtTime(iso), h('span', { class: 'muted', text: ` (${relative(iso)})` }));
}

function badge(text, tone) {
  return h('span', { class: `badge ${tone || ''}`, text });
}

function shortId(id) {
  return id ? String(id).slice(0, 8) : '';
}

function idCode(id) {
  return h('code', { class: 'id', title: id, text: id });
}

function safeHttpUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

function byName(a, b) {
  return String(a.name).localeCompare(String(b.name));
}

// ---- status line and confirmation ----------------------------------------------------------

const statusEl = document.getElementById('status');

function setStatus(kind, text) {
  statusEl.hidden = false;
  statusEl.dataset.kind = kind;
  statusEl.className = `status ${kind}`;
  statusEl.textContent = '';
  append(statusEl, [h('span', { class: 'status-label', text: kind === 'error' ? 'Error: ' : kind === 'ok' ? 'Done: ' : '' }), text]);
}

function clearStatus() {
  statusEl.hidden = true;
  statusEl.textContent = '';
  delete statusEl.dataset.kind;
}

function showError(err, context) {
  setStatus('error', describeError(err, context));
}

const dialog = document.getElementById('confirm');
let dialogResolve = null;

/** An in-page confirmation: resolves true when the operator confirms. */
function confirmAction(title, message, confirmLabel = 'Confirm') {
  if (dialogResolve) dialogResolve(false);
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-message').textContent = message;
  document.getElementById('confirm-yes').textContent = confirmLabel;
  const opener = document.activeElement;
  dialog.showModal();
  document.getElementById('confirm-no').focus();
  return new Promise((resolve) => {
    dialogResolve = (value) => {
      dialogResolve = null;
      if (dialog.open) dialog.close();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(value);
    };
  });
}

document.getElementById('confirm-yes').addEventListener('click', () => dialogResolve && dialogResolve(true));
document.getElementById('confirm-no').addEventListener('click', () => dialogResolve && dialogResolve(false));
dialog.addEventListener('cancel', (e) => {
  e.preventDefault();
  if (dialogResolve) dialogResolve(false);
});

/** Runs an action from a button: disables it meanwhile, reports errors in words. */
async function busy(btn, fn) {
  if (btn) btn.disabled = true;
  try {
    return await fn();
  } finally {
    if (btn && btn.isConnected) btn.disabled = false;
  }
}

// ---- routing -------------------------------------------------------------------------------

const view = document.getElementById('view');
const nav = document.getElementById('nav');
let renderSeq = 0;
let pendingStatus = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart, queryPart = ''] = raw.split('?');
  const parts = pathPart.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { parts, query: new URLSearchParams(queryPart) };
}

/** Goes to a route; `status` ([kind, text]) is shown once the page is drawn. */
function navigate(hash, status) {
  pendingStatus = status || null;
  if (location.hash === hash) route();
  else location.hash = hash;
}

const pages = {
  signin: pageSignin,
  secrets: pageSecrets,
  grants: pageGrants,
  principals: pagePrincipals,
  providers: pageProviders,
  audit: pageAudit,
};

async function route() {
  const { parts, query } = parseHash();
  const signedIn = Boolean(getToken());
  let name = parts[0] || (signedIn ? 'secrets' : 'signin');
  if (!signedIn && name !== 'signin') {
    if (location.hash !== '#/signin') {
      location.replace('#/signin');
      return;
    }
    name = 'signin';
  }
  if (signedIn && name === 'signin') {
    location.replace('#/secrets');
    return;
  }
  if (!pages[name]) name = 'notfound';
  nav.hidden = !signedIn;
  for (const a of nav.querySelectorAll('a[data-route]')) {
    if (a.dataset.route === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const seq = ++renderSeq;
  const status = pendingStatus;
  pendingStatus = null;
  if (status) setStatus(status[0], status[1]);
  else clearStatus();
  const ctx = {
    isCurrent: () => seq === renderSeq,
    query,
  };
  view.textContent = '';
  view.dataset.page = name;
  view.dataset.ready = 'false';
  // Counts renders, so a test can tell this page's load from the one before it.
  view.dataset.render = String(seq);
  view.append(h('p', { class: 'loading', text: 'Loading…' }));
  try {
    const content = name === 'notfound' ? pageNotFound() : await pages[name](ctx, parts.slice(1));
    if (!ctx.isCurrent()) return;
    view.textContent = '';
    view.append(content);
  } catch (err) {
    if (!ctx.isCurrent()) return;
    view.textContent = '';
    view.append(h('h1', { tabindex: '-1', text: 'This page could not be loaded' }),
      h('p', { text: describeError(err) }));
    if (!(err instanceof ApiError && err.status === 401)) showError(err, 'This page could not be loaded');
  }
  view.dataset.ready = 'true';
  const heading = view.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
  document.title = `${heading ? heading.textContent : 'credgate'} · credgate portal`;
}

setUnauthenticatedHandler(() => {
  clearSession();
  navigate('#/signin', ['error', 'Your admin token is no longer accepted. Sign in again.']);
});

document.getElementById('sign-out').addEventListener('click', () => {
  clearSession();
  navigate('#/signin', ['ok', 'Signed out. The admin token was removed from this tab.']);
});

window.addEventListener('hashchange', route);

function pageHeader(title, intro, ...actions) {
  return h('div', { class: 'page-header' },
    h('div', {}, h('h1', { text: title }), intro ? h('p', { class: 'intro', text: intro }) : null),
    actions.length ? h('div', { class: 'actions' }, actions) : null);
}

function pageNotFound() {
  return h('section', {}, h('h1', { text: 'Page not found' }),
    h('p', {}, 'There is no such page. ', h('a', { href: '#/secrets', text: 'Go to the secrets.' })));
}

// ---- sign in -------------------------------------------------------------------------------

function pageSignin() {
  const input = h('input', {
    type: 'password',
    autocomplete: 'off',
    autocapitalize: 'off',
    spellcheck: 'false',
    'data-testid': 'signin-token',
  });
  const submit = h('button', { type: 'submit', 'data-testid': 'signin-submit', text: 'Sign in' });
  const form = h('form', { class: 'card narrow', novalidate: true, 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title', text: 'Sign in' }),
    h('p', { class: 'intro', text: 'Paste an admin token. It is kept only in this tab’s session storage, is sent only to this gateway’s admin API, and is forgotten when you sign out or close the tab.' }),
    field({ label: 'Admin token', control: input, required: true }),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) {
      setStatus('error', 'Enter the admin token.');
      input.focus();
      return;
    }
    await busy(submit, async () => {
      try {
        await api.verifyToken(token);
      } catch (err) {
        input.value = '';
        input.focus();
        if (err instanceof ApiError && err.status === 401) {
          setStatus('error', `That admin token was not accepted (credgate answered: ${err.message}; error ${err.code}, HTTP 401).`);
        } else {
          showError(err, 'Could not sign in');
        }
        return;
      }
      input.value = '';
      setToken(token);
      navigate('#/secrets', ['ok', 'Signed in.']);
    });
  });
  return form;
}

// ---- secrets -------------------------------------------------------------------------------

/** The native types: credential fields and config fields. */
const NATIVE = {
  bearer: {
    label: 'Bearer token',
    credential: [{ name: 'token', label: 'Token', required: true, help: 'Sent as Authorization: Bearer <token>.' }],
  },
  api_key: {
    label: 'API key (header or query parameter)',
    credential: [{ name: 'token', label: 'API key', required: true }],
  },
  basic: {
    label: 'Basic authentication',
    credential: [
      { name: 'username', label: 'Username', required: true, help: 'Must not contain “:”.' },
      { name: 'password', label: 'Password', required: true, allowEmpty: true, help: 'May be empty for APIs that take the key as the username.' },
    ],
  },
  aws_sigv4: {
    label: 'AWS Signature Version 4',
    credential: [
      { name: 'access_key_id', label: 'Access key id', required: true },
      { name: 'secret_access_key', label: 'Secret access key', required: true },
      { name: 'session_token', label: 'Session token', required: false, help: 'Only for temporary credentials.' },
    ],
  },
};

function providerLabel(type, providers) {
  if (NATIVE[type]) return 'native';
  const p = providers.get(type);
  if (!p) return `${type} (not loaded)`;
  return `${p.display_name} · ${p.id} v${p.version}${p.disabled ? ' (disabled)' : ''}`;
}

async function pageSecrets(ctx, parts) {
  if (parts[0] === 'new') return pageAddSecret(ctx);
  const [secrets, providerList] = await Promise.all([api.secrets(), api.providers().catch(() => [])]);
  const providers = new Map(providerList.map((p) => [p.id, p]));
  const section = h('section', {},
    pageHeader('Managed secrets', 'Credentials are write-only: credgate never shows a value again. Rotate to replace one; grant ids stay the same.',
      linkButton('Add secret', '#/secrets/new', 'add-secret')));
  const headers = ['Name', 'Type', 'Provider', 'Version', 'Allowed hosts', 'Active grants', 'Last used', 'Actions'];
  const rows = [];
  for (const s of [...secrets].sort(byName)) {
    const rotateBtn = button('Rotate', null, { kind: 'secondary', testid: 'rotate-secret', label: `Rotate ${s.name}` });
    const deleteBtn = button('Delete', null, { kind: 'danger', testid: 'delete-secret', label: `Delete ${s.name}` });
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

async function pageAddSecret(ctx) {
  const providerList = await api.providers();
  const templates = providerList.filter((p) => p.id !== 'custom').sort((a, b) => a.display_name.localeCompare(b.display_name));
  const custom = providerList.find((p) => p.id === 'custom');
  const descriptions = new Map();

  const nameInput = h('input', { type: 'text', autocomplete: 'off', 'data-testid': 'secret-name', maxlength: '200' });
  const typeSelect = h('select', { 'data-testid': 'secret-type' },
    h('option', { value: '', text: 'Choose a type…' }),
    h('optgroup', { label: 'Native' }, Object.entries(NATIVE).map(([id, t]) => h('option', { value: id, text: `${t.label} (${id})` }))),
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
      if (NATIVE[type]) {
        current = nativeSection(type);
      } else {
        if (!descriptions.has(type)) {
          typeArea.append(h('p', { class: 'loading', text: 'Loading the template’s fields…' }));
          descriptions.set(type, await api.provider(type));
        }
        if (typeSelect.value !== type) return;
        current = templateSection(descriptions.get(type));
      }
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
        if (v !== '' || (spec.required && spec.allowEmpty)) credential[spec.name] = v;
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

function nativeSection(type) {
  const spec = NATIVE[type];
  const cred = credentialFieldset(spec.credential);
  const baseUrl = textInput('config-base_url', 'https://api.example.com');
  const configFields = [];
  const extraConfig = [];
  let readMode = () => ({});
  if (type === 'api_key') {
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
  if (type === 'aws_sigv4') {
    for (const [name, label, placeholder, help] of [
      ['region', 'Region', 'us-east-1', 'Optional when the host names it (s3.us-east-1.amazonaws.com).'],
      ['service', 'Service', 's3', 'Optional when the host names it.'],
      ['endpoint', 'Endpoint', 'https://s3.us-east-1.amazonaws.com', 'Optional: an S3-compatible endpoint, used as the base URL. Give this or a base URL, not both.'],
    ]) {
      const input = textInput(`config-${name}`, placeholder);
      configFields.push([name, input]);
      extraConfig.push(field({ label, control: input, help }));
    }
  }
  const el = h('div', {},
    h('p', { class: 'help', text: `${spec.label}: a native injector that runs in the gateway.` }),
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

// ---- grants --------------------------------------------------------------------------------

function limitsText(policy) {
  const methods = policy.allowed_methods && policy.allowed_methods.length ? policy.allowed_methods.join(', ') : 'any method';
  const paths = policy.allowed_path_prefixes && policy.allowed_path_prefixes.length ? policy.allowed_path_prefixes.join(', ') : 'any path';
  return `${methods}; ${paths}`;
}

function statusBadge(status, reason) {
  const tone = status === 'active' ? 'ok' : status === 'revoked' ? 'bad' : 'warn';
  return badge(reason && status === 'revoked' && reason !== 'revoked' ? `${status} (${reason.replace(/_/g, ' ')})` : status, tone);
}

async function pageGrants(ctx, parts) {
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
    grants.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    const rows = grants.map((g) => {
      const p = principalById.get(g.principal_id);
      const s = secretById.get(g.secret_id);
      const revoke = g.status !== 'revoked'
        ? button('Revoke', null, { kind: 'danger', testid: 'revoke-grant', label: `Revoke grant ${g.grant_id}` })
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
        h('td', { text: limitsText(g.grant_policy) }),
        h('td', {}, timeEl(g.created_at)),
        h('td', { class: 'row-actions' },
          h('a', { href: `#/audit?grant_id=${encodeURIComponent(g.grant_id)}`, text: 'Audit', 'aria-label': `Audit of grant ${g.grant_id}` }),
          revoke));
    });
    const headers = ['Grant id', ...(secret ? [] : ['Secret']), 'Principal', 'Status', 'Expires', 'Limits (methods; paths)', 'Created', 'Actions'];
    return table({ caption: 'Grants', headers, rows, testid: 'grants-table', empty: 'No grants yet.' });
  };

  if (secret) {
    section.append(issueGrantForm(secret, principals, async (grant) => {
      issuedArea.textContent = '';
      issuedArea.append(issuedGrantPanel(grant, secret, principalById.get(grant.principal_id)));
      listArea.textContent = '';
      listArea.append(await drawList());
      const code = issuedArea.querySelector('[data-testid="issued-grant-id"]');
      if (code) code.scrollIntoView({ block: 'nearest' });
    }));
  } else if (secrets.length) {
    section.append(h('p', { class: 'help', text: 'Choose a secret to issue a grant of it.' }));
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

async function copyText(text, what) {
  try {
    if (!navigator.clipboard) throw new Error('no clipboard');
    await navigator.clipboard.writeText(text);
    setStatus('ok', `${what} copied to the clipboard.`);
  } catch {
    setStatus('error', `Could not copy the ${what.toLowerCase()} to the clipboard; select it and copy it by hand.`);
  }
}

// ---- principals ----------------------------------------------------------------------------

const KINDS = ['agent', 'user', 'system', 'group'];

async function pagePrincipals(ctx, parts) {
  if (parts[0]) return pagePrincipal(ctx, parts[0]);
  const principals = await api.principals();
  const name = h('input', { type: 'text', autocomplete: 'off', maxlength: '200', 'data-testid': 'principal-name' });
  const kind = h('select', { 'data-testid': 'principal-kind' }, KINDS.map((k) => h('option', { value: k, text: k })));
  const submit = h('button', { type: 'submit', 'data-testid': 'create-principal', text: 'Create principal' });
  const form = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'create-principal-title' },
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
    const del = button('Delete', null, { kind: 'danger', testid: 'delete-principal', label: `Delete ${p.name}` });
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

async function pagePrincipal(ctx, id) {
  const [detail, all] = await Promise.all([api.principal(id), api.principals()]);
  const byId = new Map(all.map((p) => [p.id, p]));
  const isGroup = detail.kind === 'group';
  const del = button('Delete', null, { kind: 'danger', testid: 'delete-principal' });
  del.addEventListener('click', () => deletePrincipal(detail, del));
  const section = h('section', {},
    h('p', {}, h('a', { href: '#/principals', text: '← All principals' })),
    pageHeader(`${detail.name}`, `${/^[aeiou]/.test(detail.kind) ? 'An' : 'A'} ${detail.kind}, created ${fmtTime(detail.created_at)}.`, del),
    h('dl', { class: 'facts' }, h('dt', { text: 'Id' }), h('dd', {}, idCode(detail.id)), h('dt', { text: 'Kind' }), h('dd', { text: detail.kind })));
  const reload = (status) => navigate(`#/principals/${encodeURIComponent(id)}`, status);

  if (isGroup) {
    const members = (detail.members || []).map((m) => byId.get(m) || { id: m, name: `${shortId(m)} (deleted)`, kind: '?' });
    const rows = members.sort(byName).map((m) => {
      const remove = button('Remove', null, { kind: 'danger', testid: 'remove-member', label: `Remove ${m.name} from the group` });
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
    const form = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'add-member-title' },
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
      const revoke = k.revoked_at ? null : button('Revoke', null, { kind: 'danger', testid: 'revoke-key', label: `Revoke key ${k.prefix}` });
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
  const issueForm = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'issue-key-title' },
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

// ---- providers -----------------------------------------------------------------------------

async function pageProviders() {
  const providers = await api.providers();
  providers.sort((a, b) => (a.source === b.source ? a.display_name.localeCompare(b.display_name) : a.source === 'uploaded' ? -1 : b.source === 'uploaded' ? 1 : a.source.localeCompare(b.source)));
  const file = h('input', { type: 'file', accept: '.wasm,application/wasm', 'data-testid': 'provider-file' });
  const upload = h('button', { type: 'submit', 'data-testid': 'upload-provider', text: 'Upload' });
  const form = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'upload-title' },
    h('h2', { id: 'upload-title', text: 'Upload a provider' }),
    field({ label: 'Provider component (.wasm)', control: file, help: 'A WebAssembly component implementing credgate:provider@0.1.0. It is compiled and checked before anything changes; an upload with the id of an earlier upload replaces it (calls in flight finish on the old one).' }),
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
    const toggle = p.disabled
      ? button('Enable', null, { kind: 'secondary', testid: 'enable-provider', label: `Enable ${p.display_name}` })
      : button('Disable', null, { kind: 'secondary', testid: 'disable-provider', label: `Disable ${p.display_name}` });
    const remove = p.source === 'uploaded' ? button('Remove', null, { kind: 'danger', testid: 'remove-provider', label: `Remove ${p.display_name}` }) : null;
    const row = h('tr', { 'data-testid': 'provider-row', 'data-provider-id': p.id, 'data-name': String(p.display_name).toLowerCase(), 'data-source': p.source, 'data-disabled': String(p.disabled) },
      h('th', { scope: 'row' }, h('span', { class: 'name', text: p.display_name }), h('br'), h('code', { text: p.id })),
      h('td', { 'data-col': 'version', text: p.version }),
      h('td', { 'data-col': 'source' }, badge(p.source, p.source === 'uploaded' ? 'info' : ''),
        p.overrides && p.overrides.length ? h('span', { class: 'muted', text: ` overrides ${p.overrides.join(', ')}` }) : null,
        p.loaded_at ? [h('br'), h('span', { class: 'muted', text: 'loaded ' }), timeEl(p.loaded_at)] : null),
      h('td', {}, h('code', { class: 'id', title: p.digest, text: `${p.digest.slice(0, 12)}…` }), h('br'), h('span', { class: 'muted', text: `${Math.round(p.size / 1024)} KiB` })),
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
    toggle.addEventListener('click', () => busy(toggle, async () => {
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
      h('dt', { text: 'Digest (SHA-256)' }), h('dd', {}, h('code', { class: 'wrap', text: detail.digest })),
      h('dt', { text: 'Base URL' }), h('dd', {}, d.base_url ? h('code', { text: d.base_url }) : h('span', { class: 'muted', text: 'none (set base_url in the secret)' })),
      h('dt', { text: 'Default hosts' }), h('dd', { text: d.default_hosts.length ? d.default_hosts.join(', ') : 'none' }),
      h('dt', { text: 'Docs' }), h('dd', {}, docs ? h('a', { href: docs, rel: 'noopener noreferrer', target: '_blank', text: d.docs_url }) : h('span', { class: 'muted', text: 'none' }))),
    h('h4', { text: `Credential fields${d.open_credential_fields ? ' (any others allowed)' : ''}` }), fieldList(d.credential_fields),
    h('h4', { text: 'Config fields' }), fieldList(d.config_fields));
}

// ---- audit ---------------------------------------------------------------------------------

const AUDIT_FILTERS = ['action', 'outcome', 'kind', 'principal_id', 'secret_id', 'grant_id', 'request_id', 'since', 'until', 'limit'];
const ACTIONS = ['proxy.request', 'proxy.response', 'secret.create', 'secret.rotate', 'secret.delete', 'grant.issue', 'grant.revoke',
  'principal.create', 'principal.delete', 'principal.member.add', 'principal.member.remove', 'key.issue', 'key.revoke',
  'provider.upload', 'provider.remove', 'provider.disable', 'provider.enable', 'provider.load', 'provider.unload',
  'keyring.rotate', 'keyring.rewrap'];
const OUTCOMES = ['ok', 'interrupted', 'unauthenticated', 'grant_not_found', 'grant_expired', 'grant_revoked', 'forbidden',
  'policy_violation', 'blocked_destination', 'provider_error', 'upstream_unreachable', 'upstream_timeout', 'upstream_error',
  'abandoned', 'payload_too_large', 'bad_request', 'not_found', 'conflict', 'allowed'];

function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function pageAudit(ctx) {
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
    secret_id: h('select', { 'data-testid': 'audit-secret' }, h('option', { value: '', text: 'Any' }), [...secrets].sort(byName).map((s) => h('option', { value: s.id, text: s.name }))),
    grant_id: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'audit-grant', placeholder: 'grant UUID', value: filters.grant_id || '' }),
    request_id: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'audit-request-id', value: filters.request_id || '' }),
    since: h('input', { type: 'datetime-local', 'data-testid': 'audit-since', value: filters.since ? toLocalInput(filters.since) : '' }),
    until: h('input', { type: 'datetime-local', 'data-testid': 'audit-until', value: filters.until ? toLocalInput(filters.until) : '' }),
    limit: h('select', { 'data-testid': 'audit-limit' }, ['10', '25', '50', '100', '500'].map((n) => h('option', { value: n, text: n }))),
  };
  // Keep an id filter that is not in the lists (e.g. a deleted secret) selectable.
  for (const key of ['principal_id', 'secret_id']) {
    if (filters[key] && ![...inputs[key].options].some((o) => o.value === filters[key])) {
      inputs[key].append(h('option', { value: filters[key], text: filters[key] }));
    }
  }
  inputs.kind.value = filters.kind || '';
  inputs.principal_id.value = filters.principal_id || '';
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
      field({ label: 'Secret', control: inputs.secret_id }),
      field({ label: 'Grant id', control: inputs.grant_id }),
      field({ label: 'Request id', control: inputs.request_id }),
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
    h('div', { class: 'pager' }, newer, older, pageInfo, active ? h('span', { class: 'muted', text: ` Filtered by ${Object.keys(filters).join(', ').replace(/_id/g, '')}.` }) : null),
    tableArea);
}

function auditTable(records, principalById, secretById) {
  const rows = records.map((r) => {
    const p = r.principal_id ? principalById.get(r.principal_id) : null;
    const s = r.secret_id ? secretById.get(r.secret_id) : null;
    const okOutcome = r.outcome === 'ok' || r.outcome === 'allowed';
    const request = r.method || r.host || r.path
      ? [h('code', { text: `${r.method || ''} ${r.host || ''}${r.path || ''}`.trim() }), r.status ? ` → ${r.status}` : '',
        r.latency_ms !== undefined ? h('span', { class: 'muted', text: ` ${Math.round(r.latency_ms)} ms` }) : null]
      : r.target ? h('code', { class: 'id', text: r.target }) : '';
    return h('tr', { 'data-testid': 'audit-row', 'data-seq': String(r.seq), 'data-action': r.action, 'data-outcome': r.outcome, 'data-grant-id': r.grant_id || '' },
      h('td', { text: String(r.seq) }),
      h('td', {}, h('time', { datetime: r.at, text: fmtTime(r.at) })),
      h('td', {}, h('code', { text: r.action })),
      h('td', {}, badge(r.outcome, okOutcome ? 'ok' : 'bad')),
      h('td', {}, r.actor ? h('code', { class: 'id', text: r.actor }) : '', p ? [h('br'), `${p.name} (${p.kind})`] : r.principal_id ? [h('br'), idCode(r.principal_id)] : null),
      h('td', {},
        s ? `${s.name}${r.secret_version ? ` v${r.secret_version}` : ''}` : r.secret_id ? idCode(r.secret_id) : '',
        r.grant_id ? [h('br'), h('span', { class: 'muted', text: 'grant ' }), idCode(r.grant_id)] : null,
        r.provider ? [h('br'), h('span', { class: 'muted', text: `provider ${r.provider}${r.provider_version ? ` ${r.provider_version}` : ''}` })] : null),
      h('td', {}, request),
      h('td', {}, r.request_id ? h('code', { class: 'id', text: r.request_id }) : ''),
      h('td', { text: r.message || '' }));
  });
  return table({ caption: 'Audit records', headers: ['#', 'Time', 'Action', 'Outcome', 'Who', 'Secret / grant', 'Call or target', 'Request id', 'Message'], rows, testid: 'audit-table', empty: 'No records match.' });
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

// ---- start ---------------------------------------------------------------------------------

route();
