/**
 * Any container that is not a catalog of runs (the root, /bmm, a stream, a served folder):
 * its children by name, structure family and shape, paged by the server.
 */

import { search } from "../api.js";
import { h, replace, errorBox } from "../dom.js";
import { href } from "../router.js";
import { pager, intParam } from "./pager.js";

const LIMIT = 100;

/** "array 11×5 float64", "table 11 rows × 4 columns", "container 3 items". */
export function describe(attributes) {
  const s = attributes.structure ?? {};
  switch (attributes.structure_family) {
    case "array": {
      const kinds = { f: "float", i: "int", u: "uint", b: "bool", c: "complex", U: "str", S: "bytes" };
      const dt = s.data_type;
      const dtype = dt ? `${kinds[dt.kind] ?? dt.kind}${dt.kind === "b" ? "" : dt.itemsize * 8}` : "";
      return `${(s.shape ?? []).join(" × ")} ${dtype}`.trim();
    }
    case "table": {
      const cols = s.columns?.length ?? 0;
      return `${cols} column${cols === 1 ? "" : "s"}`;
    }
    case "container":
      return s.count === undefined || s.count === null ? "" : `${s.count} item${s.count === 1 ? "" : "s"}`;
    default:
      return "";
  }
}

export async function renderChildren(el, ctx) {
  const offset = intParam(ctx.params, "offset", 0);
  const params = new URLSearchParams({ "page[offset]": offset, "page[limit]": LIMIT });
  replace(el, h("p", { class: "muted" }, "Loading…"));
  let page;
  try {
    page = await search(ctx.path, params, { signal: ctx.signal });
  } catch (err) {
    if (err.name !== "AbortError") replace(el, errorBox(err));
    return null;
  }
  const count = page.meta?.count ?? page.data.length;
  const rows = page.data.map((child) =>
    h(
      "tr",
      { dataset: { testid: "child-row" } },
      h("td", {}, h("a", { href: href([...ctx.path, child.id]) }, child.id)),
      h("td", { class: "family" }, child.attributes.structure_family),
      h("td", { class: "shape" }, describe(child.attributes)),
    ),
  );
  replace(
    el,
    h(
      "table",
      { class: "list", dataset: { testid: "child-list" } },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Family"), h("th", {}, "Shape"))),
      h("tbody", {}, rows),
    ),
    count > LIMIT ? pager(ctx, offset, LIMIT, count) : null,
    count === 0 ? h("p", { class: "muted" }, "Nothing here yet.") : null,
  );
  return null;
}
