/**
 * A table: a page of rows (data-testid table-grid) beside web-views' plot of chosen columns
 * (`renderTablePlot`). A table whose columns are array nodes (a stream's data) is paged by
 * the server, one `/array/full/...?slice=a:b` per scalar column; other tables (a CSV in a
 * served folder) are read once and paged here. Columns holding an array per row (detector
 * images) are links to their array pages rather than numbers.
 */

import { API, encodePath, getJSON } from "../api.js";
import { h, replace, errorBox, formatTime } from "../dom.js";
import { mountView } from "../mount.js";
import { href } from "../router.js";
import { pager, intParam } from "./pager.js";
import { describe } from "./children.js";

const LIMIT = 50;

/** A cell as text; a `time` column of epoch seconds as a date-time (what people read). */
function cell(value, column) {
  if (value === null || value === undefined) return "";
  if (column === "time" && typeof value === "number" && value > 1e8) return formatTime(value, true);
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(6).replace(/\.?0+(e|$)/, "$1");
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** Rows [offset, offset+limit) of a table whose columns are array nodes. */
async function slicedRows(ctx, columns, offset, limit) {
  const stop = offset + limit;
  const values = await Promise.all(
    columns.map((c) =>
      getJSON(`${API}/array/full/${encodePath([...ctx.path, c])}?slice=${offset}:${stop}&format=json`, {
        signal: ctx.signal,
      }),
    ),
  );
  const n = Math.max(0, ...values.map((v) => v.length));
  return Array.from({ length: n }, (_, i) => Object.fromEntries(columns.map((c, j) => [c, values[j][i]])));
}

export async function renderTable(el, ctx) {
  const structure = ctx.node.attributes.structure ?? {};
  const columns = structure.columns ?? [];
  const contents = structure.contents ?? null;
  const offset = intParam(ctx.params, "offset", 0);
  const gridBox = h("div", { class: "grid-wrap" }, h("p", { class: "muted" }, "Loading…"));
  const plot = h("div", { class: "viewer table-plot-mount" });
  replace(el, plot, h("h2", {}, "Rows"), gridBox);
  const dispose = mountView(plot, "./views/plot.js", "renderTablePlot", ctx);

  const scalar = contents
    ? columns.filter((c) => (contents[c]?.attributes?.structure?.shape?.length ?? 1) <= 1)
    : columns;
  const wide = contents ? columns.filter((c) => !scalar.includes(c)) : [];
  let rows;
  let count = structure.num_rows;
  try {
    if (contents && scalar.length) {
      rows = await slicedRows(ctx, scalar, offset, LIMIT);
    } else {
      const all = await getJSON(`${API}/table/full/${encodePath(ctx.path)}?format=json`, { signal: ctx.signal });
      count = all.length;
      rows = all.slice(offset, offset + LIMIT);
    }
  } catch (err) {
    if (err.name !== "AbortError") replace(gridBox, errorBox(err));
    return dispose;
  }
  count ??= offset + rows.length;
  const shown = contents ? [...scalar, ...wide] : rows.length ? Object.keys(rows[0]) : columns;
  const head = h("tr", {}, h("th", {}, "row"), shown.map((c) => h("th", {}, c)));
  const body = rows.map((row, i) =>
    h(
      "tr",
      {},
      h("th", {}, String(offset + i)),
      shown.map((c) =>
        wide.includes(c)
          ? h("td", {}, h("a", { href: href([...ctx.path, c], { slice: String(offset + i) }) },
            describe(contents[c].attributes).replace(/^\d+ × /, "")))
          : h("td", {}, cell(row[c], c)),
      ),
    ),
  );
  replace(
    gridBox,
    h("table", { class: "grid", dataset: { testid: "table-grid" } }, h("thead", {}, head), h("tbody", {}, body)),
    pager(ctx, offset, LIMIT, count),
  );
  return dispose;
}
