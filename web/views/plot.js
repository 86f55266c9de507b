/**
 * The table plot: `renderTablePlot(el, ctx) -> dispose` for a table node (H1's table page
 * shows the paged table itself beside it).
 *
 * A person chooses y columns (`plot-field`, several) and x (`plot-x`: the row index, `time`
 * when the table has it, or any 1-D numeric column). Only the chosen columns are read, in one
 * request, so that they share rows. The choice is in the URL (`plot_y`, `plot_x`), so a plot
 * can be shared; the names are prefixed because the table page uses the query string too.
 */

import {
  errorBox,
  fetchArray,
  h,
  linePlot,
  loadColumns,
  plottableColumns,
  selectBox,
  selectedValues,
} from "./common.js";

export const INDEX = "index";
export const MAX_POINTS = 100_000; // rows drawn; longer tables are strided, with a note

/** Render a plot of a table node's columns into `el`; returns dispose. */
export function renderTablePlot(el, ctx) {
  const columns = plottableColumns(ctx.node);
  const wrap = h("div", { class: "bb-view", "data-testid": "table-plot" });
  el.append(wrap);
  if (!columns.length) {
    wrap.append(h("p", { class: "bb-muted", text: "This table has no 1-D numeric column to plot." }));
    return () => wrap.remove();
  }
  const fromUrl = (ctx.params.get("plot_y") || "").split(",").filter((c) => columns.includes(c));
  const others = columns.filter((c) => c !== "time");
  let ys = fromUrl.length ? fromUrl : [others[0] || columns[0]];
  const xs = [INDEX, ...columns];
  let x = xs.includes(ctx.params.get("plot_x")) ? ctx.params.get("plot_x") : INDEX;

  const ySelect = selectBox("plot-field", columns, ys, { multiple: true });
  const xSelect = selectBox("plot-x", xs, x);
  const body = h("div");
  wrap.append(
    h("div", { class: "controls bb-controls" },
      h("label", {}, "y", ySelect),
      h("label", {}, "x", xSelect),
    ),
    body,
  );

  const rows = (ctx.node.attributes.structure || {}).num_rows || 0;
  const step = Math.max(1, Math.ceil(rows / MAX_POINTS));
  if (step > 1) {
    wrap.append(
      h("p", {
        class: "bb-note", "data-testid": "plot-note",
        text: `One row in ${step} of ${rows} is drawn (downsampled by ${step}); the Download tab has every row.`,
      }),
    );
  }
  let chart = null;
  let controller = null;
  async function draw() {
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    ctx.setParams({ plot_y: ys.join(","), plot_x: x === INDEX ? null : x });
    const wanted = [...new Set(x === INDEX ? ys : [x, ...ys])];
    let data;
    try {
      data = await readColumns(ctx, wanted, step, signal);
    } catch (err) {
      if (err.name === "AbortError") return;
      body.replaceChildren(errorBox(`Could not read the table: ${err.message}`));
      return;
    }
    if (chart) chart.destroy();
    body.replaceChildren();
    const n = data[wanted[0]].length;
    const xData = x === INDEX ? Array.from({ length: n }, (_, i) => i * step) : data[x];
    chart = linePlot(body, { labels: ys, xLabel: x, time: x === "time", testid: "plot-chart" });
    chart.setData(sortedByX(xData, ys.map((y) => data[y])));
    performance.mark("bluebroker:table-plot-drawn");
  }

  const onY = () => {
    ys = selectedValues(ySelect);
    if (ys.length) draw();
  };
  const onX = () => {
    x = xSelect.value;
    draw();
  };
  ySelect.addEventListener("change", onY);
  xSelect.addEventListener("change", onX);
  draw();
  return () => {
    if (controller) controller.abort();
    ySelect.removeEventListener("change", onY);
    xSelect.removeEventListener("change", onX);
    if (chart) chart.destroy();
    wrap.remove();
  };
}

/**
 * The columns as {name: numbers}: as raw bytes through each column's array route (strided by
 * `step`) when the table lists its columns as arrays (a stream's tables do), else as JSON
 * records of the whole table (a CSV file in a served folder, say).
 */
async function readColumns(ctx, names, step, signal) {
  const contents = (ctx.node.attributes.structure || {}).contents;
  if (!contents || !names.every((c) => contents[c])) {
    return loadColumns(ctx, ctx.path, names, signal);
  }
  const slice = step > 1 ? `::${step}` : null;
  const arrays = await Promise.all(
    names.map((c) => fetchArray(ctx, slice, signal, [...ctx.path, c])),
  );
  const n = Math.min(...arrays.map((a) => a.data.length));
  return Object.fromEntries(names.map((c, i) => [c, Array.from(arrays[i].data.subarray(0, n))]));
}

/** uPlot wants x ascending: sort the rows by x (a motor may scan downwards or back and forth). */
export function sortedByX(xData, yData) {
  let ascending = true;
  for (let i = 1; i < xData.length && ascending; i++) ascending = !(xData[i] < xData[i - 1]);
  if (ascending) return [Array.from(xData), ...yData.map((y) => Array.from(y))];
  const order = Array.from(xData, (_, i) => i).sort((a, b) => xData[a] - xData[b]);
  return [order.map((i) => xData[i]), ...yData.map((y) => order.map((i) => y[i]))];
}
