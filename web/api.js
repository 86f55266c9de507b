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

/** GET a URL under the API (or absolute path) and parse JSON; throws ApiError. */
export async function getJSON(url, { signal } = {}) {
  let response;
  try {
    response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      signal,
    });
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
