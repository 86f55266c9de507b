/**
 * The Metadata, Detail and Download tabs of any node.
 * - Metadata: the node's metadata as a tree.
 * - Detail: family, structure (shape, dtype, columns), specs, data sources (where detector
 *   files lie), and the Python and curl lines that fetch exactly this node.
 * - Download: see download.js.
 */

import { h, replace } from "../dom.js";
import { metadataTree } from "./tree.js";
import { renderDownload, dataUrl } from "./download.js";
import { describe } from "./children.js";

function specNames(node) {
  return (node.attributes.specs ?? []).map((s) => (typeof s === "string" ? s : `${s.name}${s.version ? " v" + s.version : ""}`));
}

function dtypeText(dt) {
  if (!dt) return "";
  const names = { f: "float", i: "int", u: "uint", b: "bool", c: "complex", U: "str", S: "bytes" };
  const order = { little: "<", big: ">", not_applicable: "|" }[dt.endianness] ?? "";
  return `${names[dt.kind] ?? dt.kind}${dt.kind === "b" ? "" : dt.itemsize * 8} (${order}${dt.kind}${dt.itemsize})`;
}

/** The Python lines: from_uri, then indexing segment by segment, then a read. */
export function pythonSnippet(ctx) {
  const origin = location.origin;
  const index = ctx.path.map((s) => `[${JSON.stringify(s)}]`).join("");
  const family = ctx.node.attributes.structure_family;
  const read =
    family === "array"
      ? "node.read()  # or node[0:5], a slice read on the server"
      : family === "table"
        ? "df = node.read()  # pandas DataFrame; node.read([\"col\"]) for some columns"
        : "list(node)  # the names inside";
  return [
    "from bluebroker.client import from_uri",
    "",
    `c = from_uri(${JSON.stringify(origin)})  # api_key="..." unless signed in`,
    `node = c${index}`,
    read,
  ].join("\n");
}

/** The curl lines: metadata, and the data in its default format when it has data. */
export function curlSnippet(ctx) {
  const auth = '-H "Authorization: Apikey $BLUEBROKER_API_KEY"';
  const lines = [`curl -g ${auth} \\\n  "${location.origin}/api/v1/metadata/${ctx.path.map(encodeURIComponent).join("/")}"`];
  const data = dataUrl(ctx, ctx.node.attributes.structure_family === "array" ? "json" : "csv");
  if (data) lines.push(`curl -g ${auth} \\\n  "${location.origin}${data}" -O -J`);
  return lines.join("\n");
}

function copyButton(text, testid) {
  return h("button", {
    type: "button",
    dataset: { testid },
    on: {
      click: async (e) => {
        try {
          await navigator.clipboard.writeText(text);
          e.target.textContent = "Copied";
        } catch {
          e.target.textContent = "Select and copy the text";
        }
      },
    },
  }, "Copy");
}

function snippet(title, text, testid) {
  return h("div", { class: "card" }, h("h3", {}, title, " ", copyButton(text, `copy-${testid}`)),
    h("pre", { class: "snippet", dataset: { testid } }, text));
}

function renderDetail(el, ctx) {
  const a = ctx.node.attributes;
  const s = a.structure ?? {};
  const rows = [["Path", h("code", {}, "/" + ctx.path.join("/"))], ["Family", a.structure_family]];
  const specs = specNames(ctx.node);
  if (specs.length) rows.push(["Specs", specs.join(", ")]);
  if (s.shape) rows.push(["Shape", `(${s.shape.join(", ")})`]);
  if (s.dims) rows.push(["Dimensions", s.dims.join(", ")]);
  if (s.data_type) rows.push(["dtype", dtypeText(s.data_type)]);
  if (s.chunks) rows.push(["Chunks", s.chunks.map((c) => (c.length > 4 ? `${c.length} blocks` : c.join("+"))).join(" × ")]);
  if (s.columns) {
    const contents = s.contents ?? {};
    rows.push(["Columns", s.columns.some((c) => contents[c])
      ? h("ul", { class: "plain", dataset: { testid: "detail-columns" } }, s.columns.map((c) =>
        h("li", {}, h("code", {}, c), " ", h("span", { class: "muted" }, contents[c] ? describe(contents[c].attributes) : ""))))
      : s.columns.join(", ")]);
  }
  if (s.num_rows !== undefined) rows.push(["Rows", s.num_rows]);
  if (s.count !== undefined && s.count !== null) rows.push(["Items", s.count]);
  const sources = (a.data_sources ?? []).map((d) =>
    h("li", {}, `${d.mimetype ?? ""} ${d.management ?? ""}`, d.parameters?.dataset ? ` dataset ${d.parameters.dataset}` : "",
      h("ul", {}, (d.assets ?? []).map((asset) => h("li", {}, h("code", {}, asset.path ?? asset.data_uri))))),
  );
  replace(
    el,
    h("div", { class: "card", dataset: { testid: "detail" } }, h("h2", {}, "Structure"),
      h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
    sources.length
      ? h("div", { class: "card", dataset: { testid: "data-sources" } }, h("h2", {}, "Data sources"), h("ul", {}, sources))
      : null,
    snippet("Python", pythonSnippet(ctx), "python-snippet"),
    snippet("curl", curlSnippet(ctx), "curl-snippet"),
  );
  return null;
}

export async function renderInfo(tab, el, ctx) {
  if (tab === "metadata") {
    replace(el, metadataTree(ctx.node.attributes.metadata));
    return null;
  }
  if (tab === "detail") return renderDetail(el, ctx);
  return renderDownload(el, ctx);
}
