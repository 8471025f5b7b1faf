// app.js: the example SPA. It shows who is signed in, calls the demo API
// through the BFF and logs out, using only bff-client.js. No framework, no
// build step; it runs under a strict CSP (no inline script or style).

import { createBffClient, LoggedOutError } from './bff-client.js';

// The app root is the directory this module is served from, so the app works
// at '/' as well as under a prefix such as '/shop/'.
const baseUrl = new URL('.', import.meta.url).pathname.replace(/\/$/, '');

// How often to check, while signed in, that the session is still alive
// (for example after a logout in another tab or a back-channel logout).
const POLL_MS = 60_000;

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const view = {
  loading: $('loading'),
  loggedOut: $('logged-out'),
  loggedIn: $('logged-in'),
  status: $('status'),
  userName: $('user-name'),
  userEmail: $('user-email'),
  userRoles: $('user-roles'),
  apiResult: $('api-result'),
  login: /** @type {HTMLButtonElement} */ ($('login')),
  logout: /** @type {HTMLButtonElement} */ ($('logout')),
  callApi: /** @type {HTMLButtonElement} */ ($('call-api')),
};

const bff = createBffClient({
  baseUrl,
  onLoggedOut: (err) => showLoggedOut(err.message),
});

// The provider sends the browser back from its logout page with the `state`
// the BFF gave it; it carries nothing for the app, so drop it from the URL.
if (new URLSearchParams(location.search).has('state')) {
  const clean = new URL(location.href);
  clean.searchParams.delete('state');
  history.replaceState(history.state, '', clean.pathname + clean.search + clean.hash);
}

/** @type {number | undefined} */
let pollTimer;

/**
 * Shows a message in the status line; an empty message clears it.
 * @param {string} message
 * @param {'error' | 'info'} [kind]
 */
function setStatus(message, kind = 'error') {
  view.status.textContent = message;
  view.status.className = message ? `status status-${kind}` : 'status';
}

/**
 * Describes an error for the status line, with the request ID to quote.
 * @param {string} what
 * @param {unknown} err
 */
function describe(what, err) {
  const e = /** @type {{message?: string, requestId?: string}} */ (err ?? {});
  const id = e.requestId ? ` (request ID ${e.requestId})` : '';
  return `${what}: ${e.message || String(err)}${id}`;
}

/** @param {string} [message] why, shown in the status line */
function showLoggedOut(message = '') {
  window.clearInterval(pollTimer);
  pollTimer = undefined;
  view.loading.hidden = true;
  view.loggedIn.hidden = true;
  view.loggedOut.hidden = false;
  view.apiResult.textContent = '';
  setStatus(message, 'info');
}

/** @param {import('./bff-client.js').User} user */
function showLoggedIn(user) {
  view.userName.textContent = user.name || user.preferred_username || user.sub || '';
  view.userEmail.textContent = user.email || '—';
  view.userRoles.textContent =
    Array.isArray(user.roles) && user.roles.length > 0 ? user.roles.join(', ') : '—';
  view.loading.hidden = true;
  view.loggedOut.hidden = true;
  view.loggedIn.hidden = false;
  if (pollTimer === undefined) pollTimer = window.setInterval(poll, POLL_MS);
}

/** Checks the session without extending it; switches views if it ended. */
async function poll() {
  if (view.loggedIn.hidden) return;
  try {
    const user = await bff.me({ poll: true });
    if (user) showLoggedIn(user);
    else showLoggedOut('Your session has ended. Please log in again.');
  } catch {
    // A transient failure: keep the view, try again at the next tick.
  }
}

async function start() {
  try {
    const user = await bff.me();
    if (user) {
      setStatus('');
      showLoggedIn(user);
    } else {
      showLoggedOut();
    }
  } catch (err) {
    showLoggedOut();
    setStatus(describe('Could not check your session', err));
  }
}

view.login.addEventListener('click', () => {
  view.login.disabled = true;
  bff.login();
});

view.logout.addEventListener('click', async () => {
  view.logout.disabled = true;
  setStatus('');
  try {
    await bff.logout(); // navigates away
  } catch (err) {
    setStatus(describe('Logout failed', err));
    view.logout.disabled = false;
  }
});

view.callApi.addEventListener('click', async () => {
  view.callApi.disabled = true;
  view.apiResult.setAttribute('aria-busy', 'true');
  setStatus('');
  try {
    const res = await bff.api('/api/whoami');
    const text = await res.text();
    let shown = text;
    let body = null;
    try {
      body = JSON.parse(text);
      shown = JSON.stringify(body, null, 2);
    } catch {
      // Not JSON: show the text as it came.
    }
    view.apiResult.textContent = shown;
    if (!res.ok) {
      const message = (body && body.message) || (body && body.error) || res.statusText;
      const id = body && body.requestId ? ` (request ID ${body.requestId})` : '';
      setStatus(`The API answered ${res.status}: ${message}${id}`);
    }
  } catch (err) {
    if (!(err instanceof LoggedOutError)) setStatus(describe('The API call failed', err));
    // A LoggedOutError has already switched the view through onLoggedOut.
  } finally {
    view.callApi.disabled = false;
    view.apiResult.removeAttribute('aria-busy');
  }
});

// Coming back with the Back button may restore this page from the
// back/forward cache with its buttons still disabled: reset and re-check.
window.addEventListener('pageshow', (event) => {
  if (!event.persisted) return;
  view.login.disabled = false;
  view.logout.disabled = false;
  start();
});

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') poll();
});

start();
