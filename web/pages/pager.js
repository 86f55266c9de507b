/**
 * Paging controls for server-side pages: "1–50 of 1,234" with first/previous/next/last links.
 * They are links carrying `offset=` so that every page of a list is a URL.
 */

import { h } from "../dom.js";
import { href } from "../router.js";

export function pager(ctx, offset, limit, count) {
  const to = (o) => {
    const params = new URLSearchParams(ctx.params);
    params.delete("tab");
    if (o > 0) params.set("offset", String(o));
    else params.delete("offset");
    return href(ctx.path, params);
  };
  const last = Math.max(0, Math.floor((count - 1) / limit) * limit);
  const link = (label, o, enabled, rel) =>
    enabled ? h("a", { href: to(o), rel, class: "page-link" }, label) : h("span", { class: "page-link off" }, label);
  const shown = count === 0 ? "none" : `${offset + 1}–${Math.min(offset + limit, count)} of ${count.toLocaleString()}`;
  return h(
    "div",
    { class: "pager", dataset: { testid: "pager" } },
    link("« First", 0, offset > 0),
    link("‹ Previous", Math.max(0, offset - limit), offset > 0, "prev"),
    h("span", { class: "page-count", dataset: { testid: "page-count" } }, shown),
    link("Next ›", offset + limit, offset + limit < count, "next"),
    link("Last »", last, offset + limit < count),
  );
}

/** Non-negative integer from a URL parameter, or the default. */
export function intParam(params, name, fallback) {
  const value = Number.parseInt(params.get(name) ?? "", 10);
  return Number.isFinite(value) && value >= 0 ? value : fallback;
}
