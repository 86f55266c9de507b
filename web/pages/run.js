/**
 * A run: status (running / success / fail / abort), key facts, streams and their fields, the
 * live plot of web-views (`renderRunPlot`), and the start and stop documents as trees. While
 * the run is running the status follows the live route (run-stopped) without a reload.
 */

import { API, encodePath, metadata, search } from "../api.js";
import { h, replace, errorBox, formatTime, formatDuration } from "../dom.js";
import { mountView } from "../mount.js";
import { href } from "../router.js";
import { describe } from "./children.js";
import { status } from "./runs.js";
import { metadataTree } from "./tree.js";

function facts(md) {
  const start = md.start ?? {};
  const stop = md.stop ?? {};
  const rows = [
    ["uid", h("code", {}, start.uid ?? "")],
    ["Scan id", start.scan_id],
    ["Plan", start.plan_name],
    ["Sample", start.sample === undefined ? undefined : typeof start.sample === "object" ? JSON.stringify(start.sample) : start.sample],
    ["Started", formatTime(start.time)],
    ["Stopped", stop.time ? formatTime(stop.time) : "not yet"],
    ["Duration", formatDuration(md.summary?.duration)],
    ["Reason", stop.reason || undefined],
  ].filter(([, v]) => v !== undefined && v !== "");
  return h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function badge(state) {
  return h("span", { class: `status-badge ${state}`, dataset: { testid: "run-status" } }, state);
}

/** One stream: its fields (name, shape, dtype) linked to their array pages. */
async function streamCard(ctx, name, count, signal) {
  const card = h("div", { class: "card", dataset: { testid: "stream", stream: name } },
    h("h3", {}, h("a", { href: href([...ctx.path, name]) }, name), " ",
      h("span", { class: "muted" }, count === undefined ? "" : `${count} event${count === 1 ? "" : "s"}`)),
  );
  try {
    const table = await metadata([...ctx.path, name, "data"], { signal });
    const contents = table.attributes.structure?.contents ?? {};
    const fields = (table.attributes.structure?.columns ?? []).filter((c) => c !== "time");
    card.append(
      h("ul", { class: "fields" },
        fields.map((f) =>
          h("li", { dataset: { testid: "field" } },
            h("a", { href: href([...ctx.path, name, "data", f]) }, f), " ",
            h("span", { class: "muted" }, contents[f] ? describe(contents[f].attributes) : ""),
          ),
        ),
      ),
      h("p", {}, h("a", { href: href([...ctx.path, name, "data"]) }, "Table of all fields")),
    );
  } catch (err) {
    if (err.name !== "AbortError") card.append(errorBox(err));
  }
  return card;
}

/** Follow the run over the live route (Server-Sent Events) until it stops, then call onStop. */
function followStatus(ctx, onStop) {
  const url = `${API}/stream/single/${encodePath(ctx.path)}`;
  let source;
  try {
    source = new EventSource(url, { withCredentials: true });
  } catch {
    return () => {};
  }
  const stopped = () => {
    source.close();
    onStop();
  };
  source.addEventListener("run-stopped", stopped);
  // the first message says whether the run ended before this subscription began
  source.addEventListener("schema", (event) => {
    try {
      if (JSON.parse(event.data).stopped) stopped();
    } catch {
      /* not JSON: wait for run-stopped */
    }
  });
  return () => source.close();
}

export async function renderRun(el, ctx) {
  const md = ctx.node.attributes.metadata ?? {};
  const state = status(md);
  const factsBox = h("div", { class: "card" }, h("h2", {}, "Run ", badge(state)), facts(md));
  const streamsBox = h("div", { class: "card", dataset: { testid: "streams" } }, h("h2", {}, "Streams"),
    h("p", { class: "muted" }, "Loading…"));
  const plot = h("div", { class: "viewer run-plot-mount" });
  const startTree = h("details", { class: "card doc", open: true, dataset: { testid: "start-doc" } },
    h("summary", {}, h("strong", {}, "Start document")), metadataTree(md.start, { testid: "start-tree" }));
  const stopTree = h("details", { class: "card doc", dataset: { testid: "stop-doc" } },
    h("summary", {}, h("strong", {}, "Stop document")),
    md.stop ? metadataTree(md.stop, { testid: "stop-tree" }) : h("p", { class: "muted" }, "The run has not stopped yet."));
  const plotBox = h("div", { class: "card plot-card" }, h("h2", {}, "Plot"), plot);
  replace(el, h("div", { class: "run-layout" }, h("div", { class: "run-side" }, factsBox, streamsBox), plotBox),
    h("div", { class: "cards docs" }, startTree, stopTree));

  const disposers = [];
  if (state === "running") {
    // refresh the facts and the stop document in place: the plot keeps its own live state
    disposers.push(followStatus(ctx, async () => {
      try {
        const fresh = (await metadata(ctx.path, { signal: ctx.signal })).attributes.metadata ?? {};
        replace(factsBox, h("h2", {}, "Run ", badge(status(fresh))), facts(fresh));
        replace(stopTree, h("summary", {}, h("strong", {}, "Stop document")),
          fresh.stop ? metadataTree(fresh.stop, { testid: "stop-tree" }) : h("p", { class: "muted" }, "The run has not stopped yet."));
      } catch (err) {
        if (err.name !== "AbortError") factsBox.append(errorBox(err));
      }
    }));
  }
  const counts = md.summary?.num_events ?? {};
  search(ctx.path, new URLSearchParams({ "page[limit]": "100" }), { signal: ctx.signal })
    .then(async (page) => {
      const names = page.data.map((s) => s.id);
      const cards = await Promise.all(names.map((n) => streamCard(ctx, n, counts[n], ctx.signal)));
      replace(streamsBox, h("h2", {}, "Streams"), names.length ? cards : h("p", { class: "muted" }, "No streams yet."));
    })
    .catch((err) => {
      if (err.name !== "AbortError") replace(streamsBox, h("h2", {}, "Streams"), errorBox(err));
    });
  disposers.push(await mountView(plot, "./views/live.js", "renderRunPlot", ctx));
  return () => disposers.forEach((d) => d?.());
}
