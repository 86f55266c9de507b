/**
 * Metadata as a readable tree: objects and lists fold (<details>, no script needed to open
 * them), scalars show as `key: value`. Big documents stay usable because only the first
 * levels start open and long lists show their length before they are opened.
 */

import { h } from "../dom.js";

const OPEN_LEVELS = 1;

function scalar(value) {
  if (value === null) return h("span", { class: "muted" }, "null");
  if (typeof value === "string") return h("span", { class: "str" }, JSON.stringify(value));
  return h("span", { class: "num" }, String(value));
}

/** A tree for `value` under `key`; `level` decides which branches start open. */
export function tree(key, value, level = 0) {
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    const size = Array.isArray(value) ? `[${value.length}]` : `{${entries.length}}`;
    if (entries.length === 0) {
      return h("div", { class: "tree-leaf" }, h("span", { class: "tree-key" }, `${key}: `), size);
    }
    return h(
      "details",
      { class: "tree", open: level < OPEN_LEVELS },
      h("summary", {}, h("span", { class: "tree-key" }, String(key)), " ", h("span", { class: "muted" }, size)),
      entries.map(([k, v]) => tree(k, v, level + 1)),
    );
  }
  return h("div", { class: "tree-leaf" }, h("span", { class: "tree-key" }, `${key}: `), scalar(value));
}

/** The tree of a whole object, its top-level keys each a branch or leaf. */
export function metadataTree(value, { open = OPEN_LEVELS, testid = "metadata-tree" } = {}) {
  const entries = Object.entries(value ?? {});
  if (!entries.length) return h("p", { class: "muted" }, "No metadata.");
  return h(
    "div",
    { class: "tree-root", dataset: { testid } },
    entries.map(([k, v]) => tree(k, v, OPEN_LEVELS - open)),
  );
}
