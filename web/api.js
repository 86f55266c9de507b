/**
 * The page's only way to the server: same-origin fetches of the HTTP API. Errors become
 * ApiError carrying the API's own words (its JSON `detail`), so every page can show them
 * as they are instead of a status code.
 */

export const API = "/api/v1";

/** An HTTP error with the server's explanation; `status` is the HTTP status (0: no answer). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Encode path segments for a URL (each one; slashes separate them). */
export function encodePath(segments) {
  return segments.map(encodeURIComponent).join("/");
}

/** Read the error body's words: `{detail: "..."}` (or Pydantic's list of problems). */
async function errorFrom(response) {
  let text = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    const detail = body.detail ?? body.error ?? body;
    if (typeof detail === "string") text = detail;
    else if (Array.isArray(detail)) text = detail.map((d) => d.msg ?? JSON.stringify(d)).join("; ");
    else text = JSON.stringify(detail);
  } catch {
    /* a body that is not JSON: keep the status line */
  }
  return new ApiError(response.status, text);
}

/** GET a URL under the API (or absolute path) and parse JSON; throws ApiError. `early` is a
 * view's ctx.takeEarly: the shell may have sent this very request already (see below). */
export async function getJSON(url, { signal, early } = {}) {
  let response;
  try {
    response = await (early?.(url, signal) ??
      fetch(url, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        signal,
      }));
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `the server did not answer (${err.message}); is it running?`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

/** One node's JSON (`data` of /metadata/{path}). */
export async function metadata(segments, opts) {
  const body = await getJSON(`${API}/metadata/${encodePath(segments)}`, opts);
  return body.data;
}

/** One page of children: `{data, meta: {count}, links}`; `params` is a URLSearchParams. */
export function search(segments, params, opts) {
  const query = params.toString();
  return getJSON(`${API}/search/${encodePath(segments)}${query ? "?" + query : ""}`, opts);
}

let aboutPromise = null;
/** GET /api/v1/ once per page load: formats per family, queries, authentication. */
export function about() {
  aboutPromise ??= getJSON(`${API}/`).catch((err) => {
    aboutPromise = null;
    throw err;
  });
  return aboutPromise;
}

/** POST JSON with the OpenID Connect session's CSRF header when there is one. */
export async function postJSON(url, body, csrf) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers,
    body: JSON.stringify(body ?? {}),
  });
  if (!response.ok) throw await errorFrom(response);
  return response.status === 204 ? null : response.json();
}

/*
 * A view's first data request, started on a repeat visit before the node's metadata is in.
 * The image view cannot ask for its plane before it knows the array's shape (which says how
 * much to downsample), so a first visit costs two round trips in a row. The URL that view
 * asked for first is kept for this tab (sessionStorage, keyed by the page's URL); the next
 * time the same page opens, that request is sent at once, beside the metadata request, and
 * handed to the view only if it asks for exactly that URL (else it is aborted unused).
 */
const FIRST = "bluebroker:first-request:";

function stored(key, url) {
  try {
    if (url === undefined) return sessionStorage.getItem(FIRST + key);
    sessionStorage.setItem(FIRST + key, url);
  } catch {
    /* storage refused (a privacy mode): every visit is a first visit */
  }
  return null;
}

/** Start the remembered first request of the page at `key` (its path and query) if there is
 * one; the result goes in the view's ctx as `early`. */
export function startEarly(key) {
  const early = { key, url: null, controller: null, response: null, used: false, kept: false };
  const url = stored(key);
  if (url && url.startsWith(`${API}/`)) {
    early.url = url;
    early.controller = new AbortController();
    early.response = fetch(url, { credentials: "same-origin", signal: early.controller.signal });
    early.response.catch(() => {}); // an unused one is aborted: not an error for the page
  }
  return early;
}

/** The early response if `url` is the one it asked for (once), else null; the first URL a
 * view asks for is remembered for the next visit either way. */
export function takeEarly(early, url, signal) {
  if (!early) return null;
  if (!early.kept) {
    early.kept = true;
    if (url !== early.url) stored(early.key, url);
  }
  if (early.used || early.url !== url) return null;
  early.used = true;
  signal?.addEventListener("abort", () => early.controller.abort());
  return early.response;
}

/** After the view is mounted: abort an early request it did not want. */
export function dropEarly(early) {
  if (early?.controller && !early.used) early.controller.abort();
  if (early) early.used = true;
}
