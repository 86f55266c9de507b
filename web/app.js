/**
 * The page frame: reads the URL, fetches the node, draws breadcrumbs and tabs, and hands the
 * "View" tab to the page that fits the node (a catalog of runs, a run, a table, an array, any
 * other container). Parts that web-views owns (array viewer, plots) are loaded by dynamic
 * import, so a missing or broken viewer leaves the rest of the page working.
 */

import { API, dropEarly, metadata, startEarly, takeEarly } from "./api.js";
import { h, replace, errorBox } from "./dom.js";
import * as router from "./router.js";
import { renderTabs, TABS } from "./pages/tabs.js";
import { renderSession, signInLink } from "./pages/session.js";

const main = document.getElementById("main");
const crumbs = document.querySelector("[data-testid=breadcrumbs]");

let dispose = null;
let controller = null;

/** Breadcrumbs: Top / bmm / raw / <uid> / ..., each a link to that node. */
function renderCrumbs(path) {
  const parts = [h("a", { href: router.href([]) }, "Top")];
  path.forEach((segment, i) => {
    const label = segment.length > 20 ? segment.slice(0, 8) + "…" : segment;
    parts.push(h("span", { class: "sep", "aria-hidden": "true" }, " / "));
    const last = i === path.length - 1;
    parts.push(
      last
        ? h("span", { "aria-current": "page", title: segment }, label)
        : h("a", { href: router.href(path.slice(0, i + 1)), title: segment }, label),
    );
  });
  replace(crumbs, parts);
}

/** What the View tab shows for a node, as [module, function] (H1 pages or H2 views). */
export function viewFor(node) {
  const family = node.attributes.structure_family;
  const specs = (node.attributes.specs ?? []).map((s) => (typeof s === "string" ? s : s.name));
  if (family === "container" && specs.includes("CatalogOfBlueskyRuns")) {
    return ["./pages/runs.js", "renderRuns"];
  }
  if (family === "container" && specs.includes("BlueskyRun")) return ["./pages/run.js", "renderRun"];
  if (family === "container") return ["./pages/children.js", "renderChildren"];
  if (family === "table") return ["./pages/table.js", "renderTable"];
  if (family === "array") return ["./pages/array.js", "renderArrayPage"];
  return null;
}

async function render() {
  controller?.abort();
  controller = new AbortController();
  const { signal } = controller;
  const old = dispose;
  dispose = null;
  try {
    await old?.();
  } catch (err) {
    console.error("dispose failed", err);
  }
  const { path, params } = router.current();
  renderCrumbs(path);
  document.title = path.length ? `${path.at(-1)} · bluebroker` : "bluebroker";
  // a repeat visit's first data request goes now, beside the metadata (see api.js)
  const early = startEarly(location.pathname + location.search);
  signal.addEventListener("abort", () => dropEarly(early));
  let node;
  try {
    node = await metadata(path, { signal });
  } catch (err) {
    dropEarly(early);
    if (err.name === "AbortError") return;
    replace(main, errorBox(err));
    if (err.status === 401) {
      const link = await signInLink("signin-prompt");
      if (link) main.append(h("p", {}, link));
    }
    return;
  }
  if (signal.aborted) return;
  const ctx = {
    path,
    node,
    params,
    // a view whose page was left must not write into the next page's URL
    setParams: (changes) =>
      signal.aborted ? new URLSearchParams(location.search) : router.setParams(changes),
    navigate: router.navigate,
    apiBase: API,
    signal,
    // (url, signal) -> the shell's early request for url, or null (see api.js)
    takeEarly: (url, viewSignal) => takeEarly(early, url, viewSignal),
  };
  const tab = TABS.includes(params.get("tab")) ? params.get("tab") : "view";
  const body = h("section", { class: "tab-body" });
  replace(main, renderTabs(ctx, tab), body);
  try {
    dispose = await renderTab(tab, body, ctx);
  } finally {
    dropEarly(early); // the view has asked for its first data by now, or never will
  }
}

async function renderTab(tab, el, ctx) {
  if (tab !== "view") {
    const pages = await import("./pages/info.js");
    return pages.renderInfo(tab, el, ctx);
  }
  const view = viewFor(ctx.node);
  if (!view) {
    replace(el, h("p", {}, `Nothing to show for a ${ctx.node.attributes.structure_family}.`));
    return null;
  }
  const [module, fn] = view;
  const page = await import(module);
  return page[fn](el, ctx);
}

let sessionShown = false;
router.start(() => {
  const rendered = render().catch((err) => replace(main, errorBox(err)));
  if (sessionShown) return;
  sessionShown = true;
  // who is signed in asks the server twice: after the view has asked for its data, so that
  // those requests do not make the first paint wait on a busy server
  rendered.finally(() => renderSession(document.getElementById("who")));
});
