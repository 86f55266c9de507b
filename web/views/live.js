/**
 * The run page's plot: `renderRunPlot(el, ctx) -> dispose`, `ctx.node` being the run.
 *
 * A person picks a stream, fields and x (time, the row index, or any column; by default the
 * run's first motor, `start.motors[0]`, when the stream has it, else time). The plot grows as
 * the run acquires, with no reload, over Server-Sent Events of the stream's `data` table.
 *
 * Why subscribe first and read after: the subscription is opened without `start=`, and only
 * once its `schema` message has arrived (so the server is already queueing changes for us)
 * are the current rows read. A row announced both ways is dropped by its row number, so no
 * row is lost or drawn twice. On a dropped connection `EventSource` reconnects by itself,
 * sending `Last-Event-ID`, and the server resumes right after it. When the run has stopped
 * (`stopped` in the schema, or a `run-stopped` message) the status says "finished" and the
 * connection is closed.
 */

import {
  apiUrl,
  errorBox,
  getJson,
  h,
  linePlot,
  loadColumns,
  plottableColumns,
  selectBox,
  selectedValues,
  toNumber,
} from "./common.js";
import { sortedByX } from "./plot.js";

const INDEX = "index";

/** Render the live plot of a run into `el`; returns dispose (closes the EventSource). */
export function renderRunPlot(el, ctx) {
  const wrap = h("div", { class: "bb-view", "data-testid": "run-plot" });
  const status = h("span", { class: "bb-live", "data-testid": "live-status" });
  const controls = h("div", { class: "controls bb-controls" });
  const body = h("div");
  wrap.append(controls, body);
  el.append(wrap);
  const start = (ctx.node.attributes.metadata || {}).start || {};
  let current = null; // the shown stream's state, replaced when the choice changes
  const outer = new AbortController();

  async function init() {
    let streams;
    try {
      const listing = await getJson(apiUrl(ctx, "search", { "page[limit]": 100 }), outer.signal);
      streams = listing.data.map((d) => d.id);
    } catch (err) {
      if (err.name !== "AbortError") wrap.append(errorBox(`Could not list streams: ${err.message}`));
      return;
    }
    if (!streams.length) {
      waitForStream();
      return;
    }
    const wanted = ctx.params.get("plot_stream");
    const first = streams.includes(wanted) ? wanted : streams.includes("primary") ? "primary" : streams[0];
    const streamSelect = selectBox("plot-stream", streams, first);
    streamSelect.addEventListener("change", () => show(streamSelect.value, true));
    controls.append(h("label", {}, "stream", streamSelect), status);
    show(first, false);
  }

  async function show(stream, changed) {
    if (current) current.close();
    const state = (current = new StreamPlot(ctx, stream, start, body, status, changed));
    try {
      await state.open(outer.signal);
    } catch (err) {
      if (err.name !== "AbortError" && state === current) {
        body.replaceChildren(errorBox(`Could not plot ${stream}: ${err.message}`));
      }
    }
  }

  /** A run that has no stream yet: wait on the run's own live route for its first one. */
  function waitForStream() {
    body.replaceChildren(h("p", { class: "bb-muted", text: "No data yet: waiting for the run's first stream…" }));
    status.dataset.state = "live";
    status.textContent = "live";
    controls.append(status);
    const es = (runEvents = new EventSource(apiUrl(ctx, "stream/single"), { withCredentials: true }));
    const again = () => {
      es.close();
      status.remove();
      init();
    };
    es.addEventListener("schema", async (e) => {
      if (JSON.parse(e.data).stopped) return stopped();
      // a stream made between the listing and the subscription sends no stream-created
      const listing = await getJson(apiUrl(ctx, "search", { "page[limit]": 1 }), outer.signal).catch(() => null);
      if (listing && listing.data.length && es.readyState !== EventSource.CLOSED) again();
    });
    es.addEventListener("stream-created", again);
    es.addEventListener("run-stopped", stopped);
    function stopped() {
      es.close();
      status.dataset.state = "finished";
      status.textContent = "finished";
      body.replaceChildren(h("p", { class: "bb-muted", text: "The run ended with no data." }));
    }
  }

  let runEvents = null;
  init();
  return () => {
    outer.abort();
    if (runEvents) runEvents.close();
    if (current) current.close();
    wrap.remove();
  };
}

/** One stream's plot: its controls, its rows so far, and its EventSource. */
class StreamPlot {
  constructor(ctx, stream, start, body, status, fresh) {
    Object.assign(this, { ctx, stream, start, body, status, fresh });
    this.table = [...ctx.path, stream, "data"];
    this.rows = {}; // column -> values, every plottable column
    this.have = 0; // rows held: the next row number expected from the server
    this.events = null;
    this.closed = false;
    this.loading = null;
    this.pending = []; // messages that came while the current rows were being read
  }

  async open(signal) {
    const node = (await getJson(apiUrl(this.ctx, "metadata", {}, this.table), signal)).data;
    if (this.closed) return;
    this.columns = plottableColumns(node).filter((c) => c !== "seq_num");
    const p = this.fresh ? new URLSearchParams() : this.ctx.params;
    const motor = (this.start.motors || []).find((m) => this.columns.includes(m));
    const xs = [...(this.columns.includes("time") ? ["time"] : []), INDEX, ...this.columns.filter((c) => c !== "time")];
    this.x = xs.includes(p.get("plot_x")) ? p.get("plot_x") : motor || (xs.includes("time") ? "time" : INDEX);
    const skip = new Set(["time", ...(this.start.motors || [])]);
    const fromUrl = (p.get("plot_y") || "").split(",").filter((c) => this.columns.includes(c));
    const guess = this.columns.filter((c) => !skip.has(c) && !c.endsWith("_setpoint"));
    this.ys = fromUrl.length ? fromUrl : [guess[0] || this.columns[0]].filter(Boolean);
    const ySelect = selectBox("plot-field", this.columns, this.ys, { multiple: true });
    const xSelect = selectBox("plot-x", xs, this.x);
    ySelect.addEventListener("change", () => {
      const ys = selectedValues(ySelect);
      if (ys.length) {
        this.ys = ys;
        this.rebuild();
      }
    });
    xSelect.addEventListener("change", () => {
      this.x = xSelect.value;
      this.rebuild();
    });
    this.body.replaceChildren(
      h("div", { class: "controls bb-controls" }, h("label", {}, "y", ySelect), h("label", {}, "x", xSelect)),
    );
    this.chartBox = h("div");
    this.body.append(this.chartBox);
    this.rebuild();
    this.subscribe();
  }

  /** Save the choice in the URL and draw a new chart (axes and series changed). */
  rebuild() {
    this.ctx.setParams({ plot_stream: this.stream, plot_y: this.ys.join(","), plot_x: this.x });
    if (this.chart) this.chart.destroy();
    this.chart = linePlot(this.chartBox, {
      labels: this.ys, xLabel: this.x, time: this.x === "time", testid: "run-plot-chart",
    });
    const missing = this.wanted().some((c) => !(c in this.rows));
    if (this.loadedOnce && missing) this.reload(); // only the shown columns are held
    else this.redraw();
  }

  /** The columns the plot shows: only these are read, so that a wide stream stays light. */
  wanted() {
    return [...new Set([...(this.x === INDEX ? [] : [this.x]), ...this.ys])];
  }

  redraw() {
    if (!this.chart || this.closed) return;
    const n = this.have;
    const xData = this.x === INDEX ? Array.from({ length: n }, (_, i) => i) : this.rows[this.x] || [];
    this.chart.setData(sortedByX(xData, this.ys.map((y) => this.rows[y] || [])));
  }

  setStatus(state, text) {
    this.status.dataset.state = state;
    this.status.textContent = text;
  }

  subscribe() {
    const url = apiUrl(this.ctx, "stream/single", {}, this.table);
    const es = (this.events = new EventSource(url, { withCredentials: true }));
    this.setStatus("connecting", "connecting…");
    es.addEventListener("schema", (e) => {
      const msg = JSON.parse(e.data);
      if (msg.stopped) this.finished = true;
      if (!this.loadedOnce) {
        this.loadedOnce = true;
        this.reload();
      }
      this.setStatus(this.finished ? "finished" : "live", this.finished ? "finished" : "live");
      if (this.finished) es.close();
    });
    es.addEventListener("rows-appended", (e) => this.appended(JSON.parse(e.data)));
    es.addEventListener("run-stopped", (e) => {
      const msg = JSON.parse(e.data);
      this.finished = true;
      this.setStatus("finished", `finished (${msg.exit_status || "stopped"})`);
      es.close();
    });
    es.addEventListener("error", (e) => {
      if (this.closed || this.finished) return;
      // A server `event: error` (we fell behind) or a dropped connection: EventSource
      // reconnects with Last-Event-ID by itself; the status says so meanwhile.
      this.setStatus("reconnecting", e.data ? `reconnecting: ${JSON.parse(e.data).detail}` : "reconnecting…");
    });
  }

  /** Read every row so far (the plot's columns, in one request), then apply what came since. */
  async reload() {
    if (this.closed) return;
    const columns = this.wanted();
    this.loading = loadColumns(this.ctx, this.table, columns, undefined);
    let data;
    try {
      data = await this.loading;
    } catch (err) {
      this.body.append(errorBox(`Could not read the rows: ${err.message}`));
      return;
    } finally {
      this.loading = null;
    }
    if (this.closed) return;
    this.rows = data;
    this.have = columns.length ? data[columns[0]].length : 0;
    const pending = this.pending;
    this.pending = [];
    for (const msg of pending) this.appended(msg);
    this.redraw();
    performance.mark("bluebroker:run-plot-drawn");
  }

  appended(msg) {
    if (this.loading) {
      this.pending.push(msg);
      return;
    }
    const { start_row: from, stop_row: to, data } = msg;
    if (to <= this.have) return; // already read with the current rows
    if (from > this.have || !data) {
      this.reload(); // a gap, or rows too large to ride along: read them all again
      return;
    }
    const skip = this.have - from;
    for (const c of Object.keys(this.rows)) {
      const values = data[c] || [];
      const column = this.rows[c];
      for (let i = skip; i < to - from; i++) column.push(i < values.length ? toNumber(values[i]) : NaN);
    }
    this.have = to;
    this.redraw();
  }

  close() {
    this.closed = true;
    if (this.events) this.events.close();
    if (this.chart) this.chart.destroy();
  }
}
