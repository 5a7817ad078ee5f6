// Sign in: the admin token, kept in this tab only.

import { api, ApiError, setToken, setScopes } from './api.js';
import {
  h,
  field,
  button,
  setStatus,
  showError,
  busy,
  navigate,
} from './ui.js';

export function pageSignin() {
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
      let who;
      try {
        who = await api.verifyToken(token);
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
      setScopes(who.scopes);
      navigate('#/', ['ok', 'Signed in.']);
    });
  });
  return form;
}
