/**
 * The Download tab: every format the server offers for this node's family (from GET
 * /api/v1/ `aliases`), an optional slice for arrays, a column choice for tables, and the link
 * itself, shown in full so that it can be copied into a script or a terminal. The choices are
 * kept in the page URL (format=, dslice=, columns=), so a prepared download can be shared.
 */

import { about, encodePath } from "../api.js";
import { h, replace, errorBox } from "../dom.js";

const SLICE_OK = /^\s*(?:-?\d*(?::-?\d*){0,2}|\.\.\.)(?:\s*,\s*(?:-?\d*(?::-?\d*){0,2}|\.\.\.))*\s*$/;

function specs(ctx) {
  return (ctx.node.attributes.specs ?? []).map((s) => (typeof s === "string" ? s : s.name));
}

/** [route, family key in /api/v1/ aliases] for this node, or null when it has no download. */
function route(ctx) {
  const family = ctx.node.attributes.structure_family;
  if (family === "array") return ["array/full", "array"];
  if (family === "table") return ["table/full", "table"];
  const s = specs(ctx);
  if (s.includes("BlueskyRun") || s.includes("BlueskyEventStream")) return ["container/full", "container"];
  return null;
}

/** The API URL (path and query) of this node's data in `format`, or null. */
export function dataUrl(ctx, format, { slice = "", columns = [], download = false } = {}) {
  const found = route(ctx);
  if (!found) return null;
  const params = new URLSearchParams({ format });
  if (slice.trim()) params.set("slice", slice.replace(/\s+/g, ""));
  for (const c of columns) params.append("column", c);
  if (download) params.set("download", "true");
  return `/api/v1/${found[0]}/${encodePath(ctx.path)}?${params}`;
}

/** Short name and media type of each format offered, the preferred short name first. */
function choices(aliases, family, ctx) {
  const offered = Object.entries(aliases[family] ?? {}).map(([media, names]) => ({ media, name: names[0] ?? media }));
  if (family === "container" && specs(ctx).includes("BlueskyRun")) {
    return offered.filter((f) => f.name === "h5" || f.name === "hdf5"); // runs: HDF5 only
  }
  return offered;
}

export async function renderDownload(el, ctx) {
  const found = route(ctx);
  const family = ctx.node.attributes.structure_family;
  if (!found) {
    replace(el, h("p", { dataset: { testid: "no-download" } },
      `A ${family} is not downloaded as one file: open an item inside it and download that.`));
    return null;
  }
  let info;
  try {
    info = await about();
  } catch (err) {
    replace(el, errorBox(err));
    return null;
  }
  const formats = choices(info.aliases ?? {}, found[1], ctx);
  const params = ctx.params;
  const select = h("select", { dataset: { testid: "download-format" }, "aria-label": "Format" },
    formats.map((f) => h("option", { value: f.name, selected: params.get("format") === f.name }, `${f.name} (${f.media})`)));
  if (!params.get("format") && formats.some((f) => f.name === "csv")) select.value = "csv";

  const sliceInput = family === "array"
    ? h("input", { value: params.get("dslice") ?? "", placeholder: "e.g. 0:5", size: 16, dataset: { testid: "download-slice" } })
    : null;
  const columns = family === "table" ? ctx.node.attributes.structure?.columns ?? [] : [];
  const chosen = new Set((params.get("columns") ?? "").split(",").filter((c) => columns.includes(c)));
  const boxes = columns.map((c) =>
    h("label", {}, h("input", { type: "checkbox", value: c, checked: chosen.has(c), dataset: { testid: `download-column-${c}` } }), c));

  const link = h("a", { class: "button", download: "", dataset: { testid: "download-link" } }, "Download");
  const full = h("input", { readonly: true, class: "grow mono", dataset: { testid: "download-url" }, "aria-label": "Link" });
  const problem = h("p", { class: "error", hidden: true, dataset: { testid: "download-problem" } });
  const copy = h("button", { type: "button", dataset: { testid: "copy-link" } }, "Copy link");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(full.value);
      copy.textContent = "Copied";
    } catch {
      full.select();
      copy.textContent = "Press Ctrl+C";
    }
  });

  function update() {
    const slice = sliceInput?.value ?? "";
    const picked = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    ctx.setParams({ format: select.value, dslice: slice.trim() || null, columns: picked.join(",") || null });
    const bad = slice && !SLICE_OK.test(slice);
    problem.hidden = !bad;
    problem.textContent = bad
      ? `"${slice}" is not a slice: use numbers, start:stop:step and commas, one part per dimension (e.g. 0:5 or 2,10:20)`
      : "";
    const url = dataUrl(ctx, select.value, { slice, columns: picked });
    full.value = location.origin + url;
    link.href = bad ? "" : dataUrl(ctx, select.value, { slice, columns: picked, download: true });
    link.toggleAttribute("aria-disabled", Boolean(bad));
  }
  for (const input of [select, sliceInput, ...boxes.map((b) => b.querySelector("input"))]) {
    input?.addEventListener("input", update);
    input?.addEventListener("change", update);
  }
  const shape = ctx.node.attributes.structure?.shape;
  replace(
    el,
    h("div", { class: "card download" },
      h("h2", {}, "Download"),
      h("div", { class: "controls" }, h("label", {}, "Format ", select)),
      sliceInput
        ? h("div", { class: "slice-help" },
          h("div", { class: "controls" }, h("label", {}, "Slice (optional) ", sliceInput)),
          h("p", { class: "muted" }, "If blank, access entire array",
            shape ? ` (shape ${shape.join(" × ")}).` : ".",
            " Examples: ", h("code", {}, "0"), " (the first frame), ", h("code", {}, "0:5"), " (the first five), ",
            h("code", {}, "::2"), " (every other), ", h("code", {}, "2,10:20,10:20"), " (a patch of frame 2), ",
            h("code", {}, "-1,..."), " (the last)."))
        : null,
      boxes.length
        ? h("fieldset", { class: "columns" }, h("legend", {}, "Columns (none ticked: all of them)"), h("div", { class: "controls" }, boxes))
        : null,
      problem,
      h("div", { class: "controls" }, link),
      h("div", { class: "controls" }, full, copy),
    ),
    specs(ctx).includes("BlueskyRun") ? documentsCard(ctx, info) : null,
  );
  update();
  return null;
}

/** A run's documents, exactly as written, in each format the documents route offers. */
function documentsCard(ctx, info) {
  const offered = Object.entries(info.aliases?.documents ?? {}).map(([media, names]) => [media, names[0] ?? media]);
  return h("div", { class: "card", dataset: { testid: "documents-download" } },
    h("h2", {}, "Documents"),
    h("p", { class: "muted" }, "The run's Bluesky documents in order, as they were written."),
    h("ul", {}, offered.map(([media, name]) =>
      h("li", {}, h("a", { href: `/api/v1/documents/${encodePath(ctx.path)}?format=${encodeURIComponent(name)}`, download: "" }, name), ` (${media})`))),
  );
}
