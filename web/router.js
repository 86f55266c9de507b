/**
 * Path-based routing: `/browse/<path>` names a node, the query string holds the view state
 * (tab, sort, offset, filters...). Every view is therefore a URL a person can share, and the
 * back button walks the views because navigation pushes history entries.
 */

const PREFIX = "/browse";

/** The node path (decoded segments) and view parameters of the current location. */
export function current() {
  let rest = location.pathname;
  rest = rest.startsWith(PREFIX) ? rest.slice(PREFIX.length) : "";
  const path = rest
    .split("/")
    .filter((s) => s !== "")
    .map(decodeURIComponent);
  return { path, params: new URLSearchParams(location.search) };
}

/** The page URL of a node path with optional view parameters. */
export function href(path, params) {
  const query = params ? new URLSearchParams(params).toString() : "";
  const base = `${PREFIX}/${path.map(encodeURIComponent).join("/")}`;
  return query ? `${base}?${query}` : base;
}

let onChange = () => {};

/** Register what to do when the location changes (our links, back/forward). */
export function start(handler) {
  onChange = handler;
  addEventListener("popstate", () => onChange());
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[href]");
    if (!link || link.target || link.hasAttribute("download")) return;
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return; // let the browser open a new tab or window
    }
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin) return;
    if (url.pathname !== "/" && !url.pathname.startsWith(PREFIX)) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  onChange();
}

/** Go to a page URL without reloading. */
export function navigate(url) {
  history.pushState(null, "", url);
  onChange();
}

/**
 * Merge `changes` into the query string (null/"" removes a key) without a history entry or a
 * re-render: views that own their state call this so the URL always reproduces what is shown.
 */
export function setParams(changes) {
  const params = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === "") params.delete(key);
    else params.set(key, String(value));
  }
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : ""));
  return params;
}
