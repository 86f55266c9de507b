/**
 * A catalog of runs: a paged, sortable, searchable list. Paging, sorting and filtering are
 * the server's (`/search` with page[offset], sort and filter[...]), so a catalog of 100,000
 * runs costs the page one small request per view. All of it lives in the URL:
 *   q=<text>            free text, plus key=value, key>value, key<value words (any metadata key)
 *   sort=<key>|-<key>   a column's sort key, "-" for descending
 *   offset=<n>, limit=<n>
 *   plan=, scan_id=, since=, until=, status=   the quick filters
 *   filter[...]=...     any of the API's own filter parameters, passed on as they are
 */

import { API, encodePath, search } from "../api.js";
import { h, replace, errorBox, formatTime, formatDuration } from "../dom.js";
import { href, navigate } from "../router.js";
import { pager, intParam } from "./pager.js";
import { runsQuery } from "./runs_query.js";

/** Columns: label, sort key (null: not sortable), cell value, CSS class (key columns stay on phones). */
const COLUMNS = [
  { label: "Scan", sort: "scan_id", value: (m) => m.start?.scan_id ?? "", cls: "key num" },
  { label: "Plan", sort: "plan_name", value: (m) => m.start?.plan_name ?? "", cls: "key" },
  { label: "Start time", sort: "time", value: (m) => formatTime(m.start?.time), cls: "key time" },
  { label: "Sample", sort: "sample", value: (m) => text(m.start?.sample), cls: "" },
  { label: "Status", sort: "stop.exit_status", value: (m) => status(m), cls: "key status" },
  { label: "Events", sort: "summary.num_events.primary", value: (m) => events(m), cls: "num" },
  { label: "Duration", sort: "summary.duration", value: (m) => formatDuration(m.summary?.duration), cls: "num" },
  { label: "uid", sort: null, value: (m) => (m.start?.uid ?? "").slice(0, 8), cls: "uid mono" },
];
const DEFAULT_SORT = "-time";
const FILTER_PARAMS = ["q", "plan", "scan_id", "since", "until", "status"];
const LIMITS = [25, 50, 100, 300];

function text(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** running / success / fail / abort, from the stop document (none yet: running). */
export function status(md) {
  if (!md.stop) return "running";
  return md.stop.exit_status ?? md.summary?.exit_status ?? "unknown";
}

/** Events in all streams (the primary stream's count first when there are several). */
function events(md) {
  const counts = md.summary?.num_events ?? md.stop?.num_events ?? {};
  const total = Object.values(counts).reduce((a, b) => a + (Number(b) || 0), 0);
  const primary = counts.primary;
  return primary !== undefined && primary !== total ? `${primary} (${total})` : String(total);
}

/** A URL of this list with some parameters changed (offset reset unless given). */
function listHref(ctx, changes) {
  const params = new URLSearchParams(ctx.params);
  params.delete("tab");
  params.delete("offset");
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === "" || value === undefined) params.delete(key);
    else params.set(key, String(value));
  }
  return href(ctx.path, params);
}

function header(ctx, sort) {
  return h(
    "tr",
    {},
    COLUMNS.map((col) => {
      if (!col.sort) return h("th", { class: col.cls }, col.label);
      const ascending = sort === col.sort;
      const descending = sort === `-${col.sort}`;
      const next = ascending ? `-${col.sort}` : col.sort;
      const arrow = ascending ? " ▲" : descending ? " ▼" : "";
      return h(
        "th",
        {
          class: col.cls,
          "aria-sort": ascending ? "ascending" : descending ? "descending" : "none",
        },
        h("a", { href: listHref(ctx, { sort: next }), dataset: { testid: `sort-${col.sort}` } },
          col.label + arrow),
      );
    }),
  );
}

/** The search form: free text and the quick filters; submitting navigates to its URL. */
function searchForm(ctx) {
  const p = ctx.params;
  const field = (name, attrs) =>
    h("input", { name, value: p.get(name) ?? "", ...attrs });
  const form = h(
    "form",
    { class: "search controls", role: "search" },
    h("input", {
      type: "search",
      name: "q",
      value: p.get("q") ?? "",
      placeholder: "Search: words, or key=value (e.g. sample=Cu, scan_id>10)",
      "aria-label": "Search runs",
      dataset: { testid: "search-input" },
      class: "grow",
    }),
    h("label", {}, "Plan ", field("plan", { size: 8, dataset: { testid: "filter-plan" } })),
    h("label", {}, "Scan id ", field("scan_id", { size: 6, inputmode: "numeric", dataset: { testid: "filter-scan-id" } })),
    h("label", {}, "From ", field("since", { type: "date", dataset: { testid: "filter-since" } })),
    h("label", {}, "to ", field("until", { type: "date", dataset: { testid: "filter-until" } })),
    h(
      "label",
      {},
      "Status ",
      h(
        "select",
        { name: "status", dataset: { testid: "filter-status" } },
        ["", "running", "success", "fail", "abort"].map((s) =>
          h("option", { value: s, selected: (p.get("status") ?? "") === s }, s || "any"),
        ),
      ),
    ),
    h("button", { type: "submit", dataset: { testid: "search-submit" } }, "Search"),
    h("a", { href: href(ctx.path), class: "clear" }, "Clear"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const changes = {};
    for (const key of FILTER_PARAMS) {
      changes[key] = String(data.get(key) ?? "").trim();
    }
    navigate(listHref(ctx, changes));
  });
  return form;
}

/**
 * Keep the list current while runs are acquired: the catalog's live route (Server-Sent
 * Events) announces run-created and run-stopped, and the page then asks again for the same
 * page of the same search (at most once a second; the server still does the paging).
 */
function followCatalog(ctx, refresh) {
  let source;
  try {
    source = new EventSource(`${API}/stream/single/${encodePath(ctx.path)}`, { withCredentials: true });
  } catch {
    return () => {};
  }
  let timer = null;
  const soon = () => {
    timer ??= setTimeout(() => {
      timer = null;
      refresh();
    }, 1000);
  };
  source.addEventListener("run-created", soon);
  source.addEventListener("run-stopped", soon);
  // subscribed now: whatever changed between the first page and this moment is fetched too
  source.addEventListener("schema", soon);
  return () => {
    source.close();
    clearTimeout(timer);
  };
}

export async function renderRuns(el, ctx) {
  const offset = intParam(ctx.params, "offset", 0);
  const limit = Math.min(300, Math.max(1, intParam(ctx.params, "limit", 50)));
  const sort = ctx.params.get("sort") || DEFAULT_SORT;
  const list = h("div", { class: "list-wrap" }, h("p", { class: "muted" }, "Loading…"));
  replace(el, searchForm(ctx), list);
  let query;
  try {
    query = runsQuery(ctx.params, Intl.DateTimeFormat().resolvedOptions().timeZone);
  } catch (err) {
    replace(list, errorBox(err));
    return null;
  }
  query.set("page[offset]", String(offset));
  query.set("page[limit]", String(limit));
  query.set("sort", sort);
  const shown = { last: null };
  if (!(await drawList(ctx, list, query, { offset, limit, sort }, shown))) return null;
  return followCatalog(ctx, () => drawList(ctx, list, query, { offset, limit, sort }, shown));
}

/**
 * Fetch one page of runs and draw it into `list`; false when it could not. A refresh that
 * brings the very page already shown draws nothing: redrawing would replace the links under
 * the pointer, and a click pressed on the old header and released on the new one is lost.
 */
async function drawList(ctx, list, query, { offset, limit, sort }, shown) {
  let page;
  try {
    page = await search(ctx.path, query, { signal: ctx.signal, early: ctx.takeEarly });
  } catch (err) {
    if (err.name !== "AbortError") replace(list, errorBox(err));
    shown.last = null;
    return false;
  }
  const count = page.meta?.count ?? page.data.length;
  const signature = JSON.stringify([count, page.data.map((run) => [run.id, run.attributes.metadata])]);
  if (signature === shown.last) return true;
  shown.last = signature;
  const rows = page.data.map((run) => {
    const md = run.attributes.metadata ?? {};
    const link = href([...ctx.path, run.id]);
    return h(
      "tr",
      { dataset: { testid: "run-row", uid: run.id, status: status(md) } },
      COLUMNS.map((col, i) => {
        const value = col.value(md);
        const cell = i === 0 || col.label === "uid" ? h("a", { href: link }, value === "" ? "—" : value) : value;
        return h("td", { class: col.cls, "data-label": col.label }, cell);
      }),
    );
  });
  const searching = [...ctx.params.keys()].some((k) => FILTER_PARAMS.includes(k) || k.startsWith("filter["));
  replace(
    list,
    h(
      "table",
      { class: "list runs", dataset: { testid: "run-list" } },
      h("thead", {}, header(ctx, sort)),
      h("tbody", {}, rows),
    ),
    count === 0
      ? h("p", { class: "muted", dataset: { testid: "no-runs" } },
        searching ? "No runs match this search." : "No runs yet.")
      : null,
    h(
      "div",
      { class: "controls list-foot" },
      pager(ctx, offset, limit, count),
      h(
        "label",
        {},
        "Per page ",
        h(
          "select",
          {
            dataset: { testid: "page-size" },
            on: { change: (e) => navigate(listHref(ctx, { limit: e.target.value })) },
          },
          LIMITS.map((n) => h("option", { value: n, selected: n === limit }, String(n))),
        ),
      ),
    ),
  );
  return true;
}
