/**
 * Small helpers shared by the array viewer, the table plot and the run page's live plot.
 *
 * Why a module of its own: the three views fetch from the same API, decode the same raw
 * array bytes and draw the same uPlot line charts; one copy keeps them consistent. Nothing
 * here touches the page shell (web/app.js): each view gets an element and a ctx, and gives
 * back a dispose function.
 */

const loaded = new Set();

/** Add a stylesheet of this package once (CSP allows 'self' styles; no inline <style>). */
export function loadCss(relative) {
  const href = new URL(relative, import.meta.url).pathname;
  if (loaded.has(href)) return;
  loaded.add(href);
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  document.head.append(link);
}

loadCss("../vendor/uplot/uPlot.min.css");
loadCss("./views.css");

/** h("div", {class: "x", "data-testid": "y"}, child...): a small element builder. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/** The API URL of a route for ctx's node (or another path), with query parameters. */
export function apiUrl(ctx, route, params = {}, path = ctx.path) {
  const tail = path.map(encodeURIComponent).join("/");
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const item of Array.isArray(v) ? v : [v]) if (item !== undefined) q.append(k, item);
  }
  const qs = q.toString();
  return `${ctx.apiBase || "/api/v1"}/${route}/${tail}${qs ? "?" + qs : ""}`;
}

/** fetch that throws an Error carrying the API's one-line `detail` (shown to the person). */
export async function fetchOk(url, signal, early = null) {
  const r = await (early ?? fetch(url, { credentials: "same-origin", signal }));
  if (!r.ok) {
    let detail = `${r.status} ${r.statusText}`;
    try {
      const body = await r.json();
      if (body && body.detail) detail = `${r.status}: ${body.detail}`;
    } catch {
      /* not JSON: keep the status line */
    }
    throw new Error(detail);
  }
  return r;
}

export async function getJson(url, signal) {
  return (await fetchOk(url, signal)).json();
}

/** Parse a numpy dtype string ("<u2", ">f8", "|b1") into {kind, itemsize, little}. */
export function parseDtype(str) {
  const m = /^([<>|=]?)([biufc])(\d+)$/.exec(str || "");
  if (!m) return null;
  return { kind: m[2], itemsize: Number(m[3]), little: m[1] !== ">" };
}

/** The node's structure dtype ({endianness, kind, itemsize}) in parseDtype's form. */
export function structureDtype(dt) {
  if (!dt || !dt.kind) return null;
  return { kind: dt.kind, itemsize: dt.itemsize, little: dt.endianness !== "big" };
}

const TYPED = {
  b1: Uint8Array, i1: Int8Array, u1: Uint8Array, i2: Int16Array, u2: Uint16Array,
  i4: Int32Array, u4: Uint32Array, f4: Float32Array, f8: Float64Array,
  i8: BigInt64Array, u8: BigUint64Array,
};
const GETTER = {
  i2: "getInt16", u2: "getUint16", i4: "getInt32", u4: "getUint32", f4: "getFloat32",
  f8: "getFloat64", i8: "getBigInt64", u8: "getBigUint64",
};
const LITTLE_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Raw C-order bytes -> a numeric typed array (Float64Array for 64-bit integers, whose values
 * past 2**53 lose precision but still draw). Byte order is swapped when it differs from the
 * browser's. Throws in words for kinds that cannot be drawn (complex, strings).
 */
export function decodeArray(buffer, dtype) {
  if (!dtype) throw new Error("the server did not say the array's dtype");
  const key = `${dtype.kind}${dtype.itemsize}`;
  const Typed = TYPED[key];
  if (!Typed) {
    throw new Error(`arrays of dtype ${key} cannot be drawn here; use the Download tab`);
  }
  const n = buffer.byteLength / dtype.itemsize;
  let out;
  if (dtype.itemsize === 1 || dtype.little === LITTLE_HOST) {
    out = new Typed(buffer, 0, n);
  } else {
    const view = new DataView(buffer);
    out = new Typed(n);
    const get = view[GETTER[key]].bind(view);
    for (let i = 0; i < n; i++) out[i] = get(i * dtype.itemsize, dtype.little);
  }
  if (dtype.itemsize === 8 && dtype.kind !== "f") out = Float64Array.from(out, Number);
  return out;
}

/** Fetch an array (or a slice) as raw bytes, decoded; resolves {data, shape}. */
export async function fetchArray(ctx, slice, signal, path = ctx.path, fallbackDtype = null) {
  const params = { format: "application/octet-stream" };
  if (slice) params.slice = slice;
  const url = apiUrl(ctx, "array/full", params, path);
  // on a repeat visit the page's shell may have sent this very request already (api.js)
  const r = await fetchOk(url, signal, ctx.takeEarly?.(url, signal));
  const shapeHeader = r.headers.get("x-array-shape");
  const dtype = parseDtype(r.headers.get("x-array-dtype")) || fallbackDtype;
  const data = decodeArray(await r.arrayBuffer(), dtype);
  const shape = shapeHeader ? shapeHeader.split(",").filter(Boolean).map(Number) : [data.length];
  return { data, shape };
}

export const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

/**
 * A uPlot line chart that follows its container's width (laptop or phone) and publishes
 * the number of points drawn on a `plot-points` element (`data-count`), which tests and
 * people can read. uPlot (150 kB) is imported on first use, so that an image view does not
 * wait for it. Returns {setData(data), destroy()}; data given before uPlot has loaded is
 * drawn when it has.
 */
export function linePlot(el, { labels, xLabel, time = false, testid, height = 320 }) {
  const box = h("div", { class: "bb-plot", "data-testid": testid });
  const count = h("span", { class: "bb-muted", "data-testid": "plot-points", "data-count": 0 });
  el.append(box, count);
  const width = () => Math.max(200, Math.floor(box.clientWidth || el.clientWidth || 600));
  const series = [{ label: xLabel }];
  labels.forEach((label, i) => {
    series.push({ label, stroke: PALETTE[i % PALETTE.length], width: 1.5, points: { size: 4 } });
  });
  const opts = {
    width: width(),
    height,
    series,
    scales: { x: { time } },
    axes: [{ label: xLabel }, {}],
    legend: { live: true },
  };
  let plot = null;
  let latest = [[], ...labels.map(() => [])];
  let destroyed = false;
  const resize = new ResizeObserver(() => plot && plot.setSize({ width: width(), height }));
  const show = () => {
    plot.setData(latest);
    const n = latest[0].length;
    count.dataset.count = String(n);
    count.textContent = `${n} point${n === 1 ? "" : "s"}`;
  };
  import("../vendor/uplot/uPlot.esm.js").then(({ default: uPlot }) => {
    if (destroyed) return;
    opts.width = width();
    plot = new uPlot(opts, latest, box);
    show();
    resize.observe(box);
  });
  return {
    setData(data) {
      latest = data;
      if (plot) show();
    },
    destroy() {
      destroyed = true;
      resize.disconnect();
      if (plot) plot.destroy();
      box.remove();
      count.remove();
    },
  };
}

/** Call fn at most once per `ms` of quiet (slider drags make many input events). */
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** An element that says what went wrong, in words (the API's detail when it gave one). */
export function errorBox(message) {
  return h("p", { class: "bb-error", role: "alert", "data-testid": "view-error", text: message });
}

/** The 1-D numeric columns of a table node (those a line plot can draw), in table order. */
export function plottableColumns(tableNode) {
  const s = tableNode.attributes.structure || {};
  const contents = s.contents || null;
  return (s.columns || []).filter((name) => {
    if (!contents || !contents[name]) return true; // unknown: let the server's data say
    const st = contents[name].attributes.structure || {};
    const kind = (st.data_type || {}).kind;
    return (st.shape || []).length === 1 && (!kind || "biuf".includes(kind));
  });
}

/**
 * Read some columns of a table, in one request (so that all have the same rows), as
 * {name: number[]}; non-numbers become NaN (uPlot leaves a gap there).
 */
export async function loadColumns(ctx, tablePath, columns, signal) {
  const url = apiUrl(ctx, "table/full", { column: columns, format: "application/json" }, tablePath);
  const records = await getJson(url, signal);
  const out = {};
  for (const c of columns) out[c] = new Array(records.length);
  records.forEach((rec, i) => {
    for (const c of columns) out[c][i] = toNumber(rec[c]);
  });
  return out;
}

export function toNumber(v) {
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "string" && v !== "" && !Number.isNaN(Number(v))) return Number(v);
  return NaN;
}

/** A <select> (multiple when asked) with a data-testid, showing `current` selected. */
export function selectBox(testid, values, current, { multiple = false, label = (v) => v } = {}) {
  const sel = h("select", { "data-testid": testid, "aria-label": testid, multiple });
  const chosen = new Set(Array.isArray(current) ? current : [current]);
  for (const v of values) {
    const opt = h("option", { value: v, text: label(v) });
    opt.selected = chosen.has(v);
    sel.append(opt);
  }
  if (multiple) {
    sel.size = Math.min(Math.max(values.length, 2), 5);
    sel.title = "Ctrl-click (⌘-click on a Mac) to choose several";
  }
  return sel;
}

export function selectedValues(sel) {
  return Array.from(sel.selectedOptions, (o) => o.value);
}
