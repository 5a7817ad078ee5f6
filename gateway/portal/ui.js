// Shared by every page: making elements, the status line, confirmations, navigation.

import { describeError } from './api.js';

// ---- DOM helpers ---------------------------------------------------------------------------

/** Makes an element. `props`: class, text, on<Event> handlers, properties value/checked, or
 * attributes (set with setAttribute, so never parsed as markup). Children: nodes or text. */
export function h(tag, props = {}, ...children) {
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

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

let uidCounter = 0;
export function uid(prefix) {
  uidCounter += 1;
  return `${prefix}-${uidCounter}`;
}

/** A labelled form control with optional help text, required marker and value kind. */
export function field({ label, control, help, required, kind, testid, wide }) {
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

export function checkbox({ label, testid, checked, help }) {
  const input = h('input', { type: 'checkbox', id: uid('c'), 'data-testid': testid, checked });
  const helpEl = help ? h('p', { class: 'help', id: uid('help'), text: help }) : null;
  if (helpEl) input.setAttribute('aria-describedby', helpEl.id);
  return { input, el: h('div', { class: 'check' }, input, h('label', { for: input.id, text: label }), helpEl) };
}

/** A credential input: a password field that browsers do not fill or remember. */
export function secretInput(testid) {
  return h('input', {
    type: 'password',
    autocomplete: 'off',
    autocapitalize: 'off',
    spellcheck: 'false',
    'data-testid': testid,
    'data-credential': 'true',
  });
}

export function button(text, onClick, { kind = '', testid, type = 'button', label } = {}) {
  return h('button', { type, class: kind, 'data-testid': testid, 'aria-label': label, onClick }, text);
}

export function linkButton(text, href, testid, kind = '') {
  return h('a', { class: `button ${kind}`.trim(), href, 'data-testid': testid }, text);
}

export function table({ caption, headers, rows, testid, empty }) {
  if (!rows.length) return h('p', { class: 'empty', 'data-testid': testid ? `${testid}-empty` : undefined, text: empty || 'Nothing here yet.' });
  return h('div', { class: 'table-wrap' },
    h('table', { 'data-testid': testid },
      caption ? h('caption', { class: 'visually-hidden', text: caption }) : null,
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, rows)));
}

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
}

export function relative(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const secs = Math.round((d.getTime() - Date.now()) / 1000);
  const abs = Math.abs(secs);
  const [n, unit] = abs < 90 ? [abs, 'second'] : abs < 5400 ? [Math.round(abs / 60), 'minute']
    : abs < 129600 ? [Math.round(abs / 3600), 'hour'] : [Math.round(abs / 86400), 'day'];
  const text = `${n} ${unit}${n === 1 ? '' : 's'}`;
  return secs >= 0 ? `in ${text}` : `${text} ago`;
}

export function timeEl(iso, fallback = '') {
  if (!iso) return h('span', { class: 'muted', text: fallback });
  return h('time', { datetime: iso }, fmtTime(iso), h('span', { class: 'muted', text: ` (${relative(iso)})` }));
}

/**
 * Marks `el` as needing `scope`: hidden (by the stylesheet) when the signed-in token lacks it.
 * The API refuses the call regardless; this only keeps the portal from offering it.
 */
export function withScope(el, scope) {
  el.dataset.scope = scope;
  return el;
}

export function badge(text, tone) {
  return h('span', { class: `badge ${tone || ''}`, text });
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : '';
}

export function idCode(id) {
  return h('code', { class: 'id', title: id, text: id });
}

export function safeHttpUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

export function byName(a, b) {
  return String(a.name).localeCompare(String(b.name));
}

// ---- status line and confirmation ----------------------------------------------------------

export const statusEl = document.getElementById('status');

export function setStatus(kind, text) {
  statusEl.hidden = false;
  statusEl.dataset.kind = kind;
  statusEl.className = `status ${kind}`;
  statusEl.textContent = '';
  append(statusEl, [h('span', { class: 'status-label', text: kind === 'error' ? 'Error: ' : kind === 'ok' ? 'Done: ' : '' }), text]);
}

export function clearStatus() {
  statusEl.hidden = true;
  statusEl.textContent = '';
  delete statusEl.dataset.kind;
}

export function showError(err, context) {
  setStatus('error', describeError(err, context));
}

export const dialog = document.getElementById('confirm');
let dialogResolve = null;

/** An in-page confirmation: resolves true when the operator confirms. */
export function confirmAction(title, message, confirmLabel = 'Confirm') {
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
export async function busy(btn, fn) {
  if (btn) btn.disabled = true;
  try {
    return await fn();
  } finally {
    if (btn && btn.isConnected) btn.disabled = false;
  }
}

export async function copyText(text, what) {
  try {
    if (!navigator.clipboard) throw new Error('no clipboard');
    await navigator.clipboard.writeText(text);
    setStatus('ok', `${what} copied to the clipboard.`);
  } catch {
    setStatus('error', `Could not copy the ${what.toLowerCase()} to the clipboard; select it and copy it by hand.`);
  }
}

export function pageHeader(title, intro, ...actions) {
  return h('div', { class: 'page-header' },
    h('div', {}, h('h1', { text: title }), intro ? h('p', { class: 'intro', text: intro }) : null),
    actions.length ? h('div', { class: 'actions' }, actions) : null);
}

// ---- navigation ----------------------------------------------------------------------------

let pendingStatus = null;

/** Goes to a route; `status` ([kind, text]) is shown once the page is drawn. Going to the
 * route already shown draws it again. */
export function navigate(hash, status) {
  pendingStatus = status || null;
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

/** The status `navigate` left for the next page, once. */
export function takePendingStatus() {
  const status = pendingStatus;
  pendingStatus = null;
  return status;
}
