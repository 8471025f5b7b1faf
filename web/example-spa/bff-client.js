// bff-client.js: a tiny, framework-free client for the bff session server.
//
// The browser never holds a token: the BFF keeps them server-side and the
// browser only sends its httpOnly session cookie. This module wraps the
// BFF's browser endpoints (/auth/login, /auth/me, /auth/logout) and calls to
// the APIs the BFF proxies (/api/...), adding the CSRF header the BFF
// requires on every call (OWASP CSRF Prevention Cheat Sheet, "Custom Request
// Headers"). It has no dependencies and no build step: import it as an ES
// module, or copy it into your project.
//
// @example
//   import { createBffClient, LoggedOutError } from './bff-client.js';
//   const bff = createBffClient({ onLoggedOut: () => render(null) });
//   const user = await bff.me();            // null when signed out
//   if (!user) bff.login();                 // full-page redirect
//   const res = await bff.api('/api/orders'); // a fetch Response
//   await bff.logout();                     // ends the session, navigates away

/**
 * The user claims returned by `GET /auth/me`. Which claims are present is
 * configured per app on the BFF; these are the usual ones.
 * @typedef {object} User
 * @property {string} sub
 * @property {string} [name]
 * @property {string} [email]
 * @property {string} [preferred_username]
 * @property {string[]} [roles]
 */

/**
 * A BFF or API error: a non-2xx answer other than "signed out".
 * `code` and `requestId` come from the JSON error body
 * `{"error": code, "message": ..., "requestId": ...}` when there is one;
 * quote the request ID when reporting a problem.
 */
export class BffError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: string, requestId?: string}} [details]
   */
  constructor(message, { status = 0, code = '', requestId = '' } = {}) {
    super(message);
    this.name = 'BffError';
    /** HTTP status, 0 for a network failure. @type {number} */
    this.status = status;
    /** Machine-readable error code from the body, if any. @type {string} */
    this.code = code;
    /** The BFF's request ID, if any. @type {string} */
    this.requestId = requestId;
  }
}

/**
 * Thrown by `api()` when the BFF answers 401: the session is gone (expired,
 * logged out in another tab, revoked). `onLoggedOut` has been called.
 */
export class LoggedOutError extends BffError {
  /** @param {{status?: number, code?: string, requestId?: string}} [details] */
  constructor(details) {
    super('Your session has ended. Please log in again.', { status: 401, ...details });
    this.name = 'LoggedOutError';
  }
}

/**
 * Reads a JSON error body without consuming the caller's response.
 * @param {Response} res
 * @returns {Promise<{error?: string, message?: string, requestId?: string}>}
 */
async function errorBody(res) {
  try {
    const body = await res.clone().json();
    return body && typeof body === 'object' ? body : {};
  } catch {
    return {};
  }
}

/**
 * Turns a non-2xx response into a BffError.
 * @param {Response} res
 * @param {string} what what was being done, for the message
 * @returns {Promise<BffError>}
 */
async function toError(res, what) {
  const body = await errorBody(res);
  const requestId = body.requestId || res.headers.get('X-Request-Id') || '';
  const message = body.message || `${what} failed with HTTP ${res.status}`;
  return new BffError(message, { status: res.status, code: body.error || '', requestId });
}

/**
 * Creates a client for a BFF on the same origin.
 *
 * @param {object} [options]
 * @param {string} [options.baseUrl=''] The app's root path on the BFF without
 *   a trailing slash, e.g. '' for an app served at '/', '/shop' for one
 *   served at '/shop/'. Endpoints are `${baseUrl}/auth/me` and so on.
 * @param {string} [options.csrfHeader='X-CSRF'] Name of the CSRF header the
 *   BFF requires (its value is always '1').
 * @param {(error: LoggedOutError) => void} [options.onLoggedOut] Called when
 *   an API call finds the session gone, before `api()` rejects.
 * @returns {{
 *   login: (returnTo?: string) => void,
 *   logout: () => Promise<void>,
 *   me: (options?: {poll?: boolean}) => Promise<User|null>,
 *   api: (path: string, init?: RequestInit) => Promise<Response>,
 * }}
 */
export function createBffClient({ baseUrl = '', csrfHeader = 'X-CSRF', onLoggedOut } = {}) {
  const root = String(baseUrl).replace(/\/+$/, '');

  /**
   * fetch with the session cookie and the CSRF header.
   * @param {string} url
   * @param {RequestInit} [init]
   */
  async function send(url, init = {}) {
    const headers = new Headers(init.headers);
    headers.set(csrfHeader, '1');
    if (!headers.has('Accept')) headers.set('Accept', 'application/json');
    try {
      return await fetch(url, { ...init, headers, credentials: 'same-origin' });
    } catch (err) {
      throw new BffError(`Network error: ${err instanceof Error ? err.message : err}`);
    }
  }

  return {
    /**
     * Starts a login: a full-page navigation to the BFF, which redirects to
     * the OpenID Provider and finally back to `returnTo`.
     * @param {string} [returnTo] A path on this app; default: the current
     *   page. The BFF ignores anything that is not a same-app path.
     */
    login(returnTo) {
      const target =
        returnTo ?? window.location.pathname + window.location.search + window.location.hash;
      window.location.assign(`${root}/auth/login?returnTo=${encodeURIComponent(target)}`);
    },

    /**
     * Ends the session on the BFF (which also revokes the refresh token),
     * then navigates to the provider's end-session URL when there is one,
     * or reloads the app's root.
     * @returns {Promise<void>} resolves as the navigation starts
     * @throws {BffError} when the BFF could not be reached or failed
     */
    async logout() {
      const res = await send(`${root}/auth/logout`, { method: 'POST' });
      if (!res.ok) throw await toError(res, 'Logout');
      /** @type {{endSessionUrl?: string}} */
      let body = {};
      try {
        body = await res.json();
      } catch {
        // No body: nothing to do at the provider.
      }
      let next = `${root}/`;
      if (body && typeof body.endSessionUrl === 'string' && body.endSessionUrl !== '') {
        const url = new URL(body.endSessionUrl, window.location.href);
        // Never navigate to javascript: or data: URLs, whatever the server says.
        if (url.protocol === 'https:' || url.protocol === 'http:') next = url.href;
      }
      window.location.assign(next);
    },

    /**
     * Asks the BFF who the user is.
     * @param {{poll?: boolean}} [options] `poll: true` checks the session
     *   without extending its idle timeout (for timers and tab focus).
     * @returns {Promise<User|null>} the user, or null when signed out
     * @throws {BffError} on any other failure
     */
    async me({ poll = false } = {}) {
      const res = await send(`${root}/auth/me${poll ? '?poll=1' : ''}`, { cache: 'no-store' });
      if (res.status === 401) return null;
      if (!res.ok) throw await toError(res, 'Checking the session');
      const body = await res.json();
      return body && body.authenticated ? body.user : null;
    },

    /**
     * Calls an API through the BFF. The BFF adds the bearer token.
     * @param {string} path A path starting with '/', relative to the app's
     *   root, e.g. '/api/orders?page=2'.
     * @param {RequestInit} [init] As for fetch; credentials are always
     *   'same-origin' and the CSRF header is added.
     * @returns {Promise<Response>} any answer but "signed out", including
     *   4xx and 5xx: check `res.ok`
     * @throws {LoggedOutError} when the BFF answers 401: the session is gone
     * @throws {BffError} on a network failure
     */
    async api(path, init = {}) {
      if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//')) {
        throw new TypeError(`api(): path must start with a single '/', got ${JSON.stringify(path)}`);
      }
      const res = await send(root + path, init);
      if (res.status === 401) {
        const body = await errorBody(res);
        // The BFF says {"error":"unauthenticated"}. A 401 whose JSON body has
        // another error code comes from the upstream API itself (for example
        // it rejected the token's audience): the session is fine, so it is
        // returned like any other error response.
        if (!body.error || body.error === 'unauthenticated') {
          const err = new LoggedOutError({ code: body.error || '', requestId: body.requestId || '' });
          if (onLoggedOut) onLoggedOut(err);
          throw err;
        }
      }
      return res;
    },
  };
}
