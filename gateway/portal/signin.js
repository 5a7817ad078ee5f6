// Sign in: through the company's identity provider when the gateway offers it (the session is
// an HttpOnly cookie), or with an admin token, kept in this tab only.

import { api, ApiError, setToken, setScopes, setActor, signinConfig } from './api.js';
import {
  h,
  field,
  button,
  setStatus,
  showError,
  busy,
  navigate,
} from './ui.js';

export async function pageSignin() {
  const config = await signinConfig();
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
      setActor(who.actor);
      navigate('#/', ['ok', 'Signed in.']);
    });
  });
  if (!config.enabled) return form;
  // A plain link: the gateway sends the browser on to the provider and back.
  const provider = h('section', { class: 'card narrow', 'aria-labelledby': 'sso-title' },
    h('h1', { id: 'sso-title', text: 'Sign in' }),
    h('p', { class: 'intro', text: `Sign in with your company account at ${config.issuer}. What you may do here follows your groups there.` }),
    h('div', { class: 'actions' },
      h('a', { class: 'button', href: '/portal/oidc/login', 'data-testid': 'signin-oidc', text: 'Sign in with your identity provider' })));
  form.querySelector('h1').replaceWith(h('h2', { id: 'signin-title', text: 'Or sign in with an admin token' }));
  return h('div', {}, provider, form);
}
