/**
 * Tiny DOM helpers. Elements are built with properties, never from HTML strings, so text
 * coming from metadata can never become markup (and the CSP forbids inline handlers anyway).
 */

/**
 * h("a", {href: "/x", class: "c", dataset: {testid: "t"}}, "text", child...) -> Element.
 * Attributes named on* are refused: listeners go through `on: {click: fn}`.
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) throw new Error(`use on: {} for ${key}`);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

/** Append strings (as text), nodes and nested arrays of them. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace the content of `node` with `children`. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** An error in words, as the API said it (data-testid=error, role=alert). */
export function errorBox(err) {
  const status = err?.status ? ` (HTTP ${err.status})` : "";
  const what =
    err?.status === 401
      ? "Not signed in, or the sign-in has expired"
      : err?.status === 403
        ? "Not allowed"
        : err?.status === 404
          ? "Not found"
          : err?.status >= 400 && err?.status < 500
            ? "The request was not accepted"
            : "Something went wrong";
  return h(
    "div",
    { class: "error", role: "alert", dataset: { testid: "error" } },
    h("strong", {}, `${what}${status}: `),
    String(err?.message ?? err),
  );
}

/** A date-time from epoch seconds, in the browser's time zone, ISO-like and sortable;
 * `precise` adds milliseconds (rows of one scan are often within a second). */
export function formatTime(seconds, precise = false) {
  if (typeof seconds !== "number") return "";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    (precise ? `.${String(d.getMilliseconds()).padStart(3, "0")}` : "")
  );
}

/** A duration in seconds as "12.3 s", "4 min 5 s" or "2 h 3 min". */
export function formatDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}
