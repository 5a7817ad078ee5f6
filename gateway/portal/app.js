// The credgate operator portal: one page, hash routes, the admin API only.
//
// Every piece of data is put into the page with textContent or setAttribute on elements made
// with document.createElement: a hostile name cannot become markup. Credential values are
// typed into password fields, read once when the form is sent, and cleared at once; they are
// never shown, stored or logged.

import { api, ApiError, describeError, getCsrf, setCsrf, setScopes, setActor, getActor, signedIn as isSignedIn, getScopes, clearSession, endSession, setUnauthenticatedHandler, allows } from './api.js';
import {
  h,
  setStatus,
  clearStatus,
  showError,
  navigate,
  takePendingStatus,
} from './ui.js';
import { pageSignin } from './signin.js';
import { pageSecrets } from './secrets.js';
import { pageGrants } from './grants.js';
import { pagePrincipals } from './principals.js';
import { pageProviders } from './providers.js';
import { pageAudit } from './audit.js';
import { pageApprovals, refreshPendingCount } from './approvals.js';
import { pageOverview } from './overview.js';

// ---- routing -------------------------------------------------------------------------------

const view = document.getElementById('view');
const nav = document.getElementById('nav');
let renderSeq = 0;

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


const pages = {
  signin: pageSignin,
  overview: pageOverview,
  secrets: pageSecrets,
  grants: pageGrants,
  principals: pagePrincipals,
  providers: pageProviders,
  audit: pageAudit,
  approvals: pageApprovals,
};

/** The scope each page needs; a token without it does not see the page in the navigation. */
const PAGE_SCOPES = {
  overview: 'audit:read',
  audit: 'audit:read',
  secrets: 'secrets:read',
  grants: 'secrets:read',
  principals: 'secrets:read',
  providers: 'secrets:read',
  approvals: 'approvals:decide',
};

/** The first page the signed-in token may open, in the navigation's order. */
function landing() {
  return ['overview', 'secrets', 'grants', 'principals', 'providers', 'approvals', 'audit'].find((p) => allows(PAGE_SCOPES[p])) || 'noaccess';
}

async function route() {
  const { parts, query } = parseHash();
  const signedIn = isSignedIn();
  if (signedIn && !parts[0]) {
    location.replace(`#/${landing()}`);
    return;
  }
  let name = parts[0] || 'signin';
  if (!signedIn && name !== 'signin') {
    if (location.hash !== '#/signin') {
      location.replace('#/signin');
      return;
    }
    name = 'signin';
  }
  if (signedIn && name === 'signin') {
    location.replace(`#/${landing()}`);
    return;
  }
  if (!pages[name] && name !== 'noaccess') name = 'notfound';
  // The API refuses what the token's scopes do not open; the portal does not offer it.
  if (PAGE_SCOPES[name] && !allows(PAGE_SCOPES[name])) name = 'noaccess';
  nav.hidden = !signedIn;
  document.getElementById('who').textContent = signedIn ? getActor() : '';
  // The stylesheet hides what needs a scope the token lacks (elements with data-scope).
  document.body.dataset.scopes = signedIn ? getScopes().join(' ') : '';
  if (signedIn && name !== 'approvals' && allows('approvals:decide')) refreshPendingCount();
  for (const a of nav.querySelectorAll('a[data-route]')) {
    a.parentElement.hidden = Boolean(PAGE_SCOPES[a.dataset.route]) && !allows(PAGE_SCOPES[a.dataset.route]);
    if (a.dataset.route === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const seq = ++renderSeq;
  const status = takePendingStatus();
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
    const content = name === 'notfound' ? pageNotFound()
      : name === 'noaccess' ? pageNoAccess(parts[0]) : await pages[name](ctx, parts.slice(1));
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
  const wasSession = Boolean(getCsrf());
  clearSession();
  navigate('#/signin', ['error', wasSession
    ? 'Your session has ended. Sign in again.'
    : 'Your admin token is no longer accepted. Sign in again.']);
});

document.getElementById('sign-out').addEventListener('click', async () => {
  const wasSession = Boolean(getCsrf());
  await endSession();
  clearSession();
  navigate('#/signin', ['ok', wasSession
    ? 'Signed out. The session was ended at the gateway.'
    : 'Signed out. The admin token was removed from this tab.']);
});

window.addEventListener('hashchange', route);
// The pending count stays current while the portal is open.
setInterval(() => {
  if (isSignedIn() && !document.hidden && allows('approvals:decide')) refreshPendingCount();
}, 15000);


function pageNoAccess(asked) {
  const needed = PAGE_SCOPES[asked];
  return h('section', { 'data-testid': 'no-access' }, h('h1', { text: 'Not open to this token' }),
    h('p', { text: needed
      ? `This admin token's scopes do not include ${needed}, which this page needs. Sign in with a token that has it.`
      : 'This admin token opens none of the portal\u2019s pages. Sign in with a token that has a scope such as secrets:read or audit:read.' }));
}

function pageNotFound() {
  return h('section', {}, h('h1', { text: 'Page not found' }),
    h('p', {}, 'There is no such page. ', h('a', { href: '#/secrets', text: 'Go to the secrets.' })));
}


// ---- start ---------------------------------------------------------------------------------

/** Back from the identity provider, the session cookie is set: learn who it is. */
async function adoptSession() {
  if (isSignedIn()) return;
  try {
    const who = await api.sessionWho();
    if (who && who.csrf) {
      setCsrf(who.csrf);
      setScopes(who.scopes);
      setActor(who.actor);
    }
  } catch {
    // No session: the sign-in page is shown.
  }
}

adoptSession().then(route);
