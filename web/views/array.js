/**
 * The array viewer: `renderArray(el, ctx) -> dispose` for any node whose structure family is
 * "array".
 *
 * - 1-D: a line plot (uPlot), strided to at most MAX_LINE points for very long arrays.
 * - >= 2-D: the last two dimensions are the picture; a slider per leading dimension picks the
 *   plane. Only that plane is fetched, as raw bytes, with slice steps so that a large plane
 *   arrives at most MAX_SIDE pixels on a side (a note says so and how to get every pixel).
 *   Colormap, linear/log scale and a percentile clip are applied in the browser, so changing
 *   them costs no request. View state (plane, colormap, scale, clip) is in the URL.
 *
 * Why raw bytes and not PNG: the server's PNG rescales per image, which would lose the
 * values under the cursor and make log scaling and clipping impossible.
 */

import { COLORMAP_NAMES, COLORMAPS, gradientCss } from "./colormaps.js";
import {
  debounce,
  errorBox,
  fetchArray,
  h,
  linePlot,
  selectBox,
  structureDtype,
} from "./common.js";

export const MAX_SIDE = 1024; // pixels on a side of a fetched plane
export const MAX_LINE = 200_000; // points of a 1-D line plot
const CLIPS = { "0-100": [0, 100], "1-99": [1, 99], "0.1-99.9": [0.1, 99.9], "5-95": [5, 95] };
const SAMPLE = 16_384; // values sorted to find the percentiles of a plane (a strided sample)

/** Render an array node into `el`; returns dispose (aborts requests, removes listeners). */
export function renderArray(el, ctx) {
  const structure = ctx.node.attributes.structure || {};
  const shape = structure.shape || [];
  const dtype = structureDtype(structure.data_type);
  el.classList.add("bb-view");
  if (shape.some((n) => n === 0)) {
    el.append(h("p", { class: "bb-muted", text: `This array is empty (shape ${shape.join(" × ")}).` }));
    return () => el.replaceChildren();
  }
  if (shape.length <= 1) return renderLine(el, ctx, shape[0] ?? 1, dtype);
  return renderImage(el, ctx, shape, structure.dims || [], dtype);
}

function renderLine(el, ctx, length, dtype) {
  const controller = new AbortController();
  const step = Math.max(1, Math.ceil(length / MAX_LINE));
  const name = ctx.path[ctx.path.length - 1] || "value";
  const chart = linePlot(el, { labels: [name], xLabel: "index", testid: "line-plot" });
  if (step > 1) {
    el.append(
      h("p", {
        class: "bb-note",
        "data-testid": "array-note",
        text:
          `One point in ${step} of ${length} is drawn (downsampled by ${step}). For all of them, use the Download ` +
          `tab, or ask the API for ?slice=a:b (a range of at most ${MAX_LINE}).`,
      }),
    );
  }
  fetchArray(ctx, step > 1 ? `::${step}` : null, controller.signal, ctx.path, dtype)
    .then(({ data }) => {
      const x = Array.from({ length: data.length }, (_, i) => i * step);
      chart.setData([x, Array.from(data)]);
      performance.mark("bluebroker:line-drawn");
    })
    .catch((err) => {
      if (err.name !== "AbortError") el.append(errorBox(`Could not read the array: ${err.message}`));
    });
  return () => {
    controller.abort();
    chart.destroy();
  };
}

/** The state in the URL: ?slice=i,j (leading indices) &cmap= &scale=linear|log &clip=1-99 */
function readState(params, shape) {
  const lead = shape.length - 2;
  const given = (params.get("slice") || "").split(",").map((s) => parseInt(s, 10));
  const index = [];
  for (let i = 0; i < lead; i++) {
    const v = Number.isFinite(given[i]) ? given[i] : 0;
    index.push(Math.min(Math.max(v < 0 ? v + shape[i] : v, 0), Math.max(shape[i] - 1, 0)));
  }
  const cmap = COLORMAPS[params.get("cmap")] ? params.get("cmap") : "viridis";
  const scale = params.get("scale") === "log" ? "log" : "linear";
  const clip = CLIPS[params.get("clip")] ? params.get("clip") : "1-99";
  return { index, cmap, scale, clip };
}

function renderImage(el, ctx, shape, dims, dtype) {
  const lead = shape.length - 2;
  const [rows, cols] = shape.slice(-2);
  const step = Math.max(1, Math.ceil(Math.max(rows, cols) / MAX_SIDE));
  const state = readState(ctx.params, shape);
  let plane = null; // {data, shape: [r, c]}
  // The display range stays the same while sliding through planes (as in ImageJ), so that
  // frames can be compared by eye; changing clip or scale, or "rescale", takes it anew.
  let shown = null; // {lo, hi}
  let controller = null;

  const controls = h("div", { class: "controls bb-controls" });
  for (let i = 0; i < lead; i++) {
    const out = h("output", { text: `${state.index[i]} / ${shape[i] - 1}` });
    const input = h("input", {
      type: "range", min: 0, max: Math.max(shape[i] - 1, 0), step: 1, value: state.index[i],
      "data-testid": `array-slider-${i}`, "aria-label": dims[i] || `dimension ${i}`,
      class: "grow",
    });
    input.disabled = shape[i] <= 1;
    input.addEventListener("input", () => {
      state.index[i] = Number(input.value);
      out.textContent = `${state.index[i]} / ${shape[i] - 1}`;
      refetch();
    });
    controls.append(h("label", { class: "bb-slider" }, dims[i] || `dim ${i}`, input, out));
  }
  const cmapSelect = select("colormap", COLORMAP_NAMES, state.cmap);
  const scaleSelect = select("scale", ["linear", "log"], state.scale);
  const clipSelect = select("clip", Object.keys(CLIPS), state.clip, (k) =>
    k === "0-100" ? "min–max" : `${k.replace("-", "–")} %`,
  );
  const rescale = h("button", {
    type: "button", "data-testid": "rescale", text: "rescale",
    title: "take the colour range from this plane (sliding keeps the range fixed)",
  });
  controls.append(
    h("label", {}, "colormap", cmapSelect),
    h("label", {}, "scale", scaleSelect),
    h("label", {}, "clip", clipSelect),
    rescale,
  );
  const canvas = h("canvas", {
    "data-testid": "array-canvas", class: "bb-canvas", width: 1, height: 1,
    "aria-label": `image of ${rows} by ${cols}`,
  });
  const readout = h("div", { class: "bb-readout", "data-testid": "array-readout", text: " " });
  const bar = h("div", { class: "bb-colorbar", "data-testid": "colorbar" });
  const barLow = h("span");
  const barHigh = h("span");
  const barRow = h("div", { class: "bb-colorbar-row" }, barLow, bar, barHigh);
  const status = h("p", { class: "bb-muted", "aria-live": "polite" });
  const problem = h("div");
  el.append(controls, canvas, readout, barRow, status, problem);
  if (step > 1) {
    const full = `${state.index.join(",")}${lead ? "," : ""}0:${Math.min(rows, MAX_SIDE)},0:` +
      `${Math.min(cols, MAX_SIDE)}`;
    el.append(
      h("p", {
        class: "bb-note", "data-testid": "array-note",
        text:
          `The ${rows}×${cols} plane is downsampled by ${step} (one row and column in ${step}) ` +
          `to fit ${MAX_SIDE} pixels. For full resolution, use the Download tab, or ` +
          `a slice of the array URL such as ?slice=${full}.`,
      }),
    );
  }
  canvas.style.width = `min(100%, ${Math.round((70 * cols) / rows)}vh)`;

  for (const [sel, key] of [[cmapSelect, "cmap"], [scaleSelect, "scale"], [clipSelect, "clip"]]) {
    sel.addEventListener("change", () => {
      state[key] = sel.value;
      if (key !== "cmap") shown = null;
      saveState();
      draw();
    });
  }
  rescale.addEventListener("click", () => {
    shown = null;
    draw();
  });
  let hover = null; // [row, col] of the fetched plane under the pointer
  const showValue = () => {
    if (!plane || !hover) return;
    const [row, col] = hover;
    const v = plane.data[row * plane.shape[1] + col];
    readout.textContent = `row ${row * step}, col ${col * step}: ${formatValue(v)}`;
  };
  const onMove = (event) => {
    if (!plane) return;
    const rect = canvas.getBoundingClientRect();
    const [r, c] = plane.shape;
    const col = Math.floor(((event.clientX - rect.left) / rect.width) * c);
    const row = Math.floor(((event.clientY - rect.top) / rect.height) * r);
    if (row < 0 || col < 0 || row >= r || col >= c) return;
    hover = [row, col];
    showValue();
  };
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerdown", onMove); // a tap on a phone reads the value too

  function saveState() {
    ctx.setParams({
      slice: lead ? state.index.join(",") : null,
      cmap: state.cmap === "viridis" ? null : state.cmap,
      scale: state.scale === "linear" ? null : state.scale,
      clip: state.clip === "1-99" ? null : state.clip,
    });
  }

  async function load() {
    if (controller) controller.abort(); // a stale plane must not land after a newer one
    controller = new AbortController();
    const asked = [...state.index]; // the slider may move on while this plane travels
    const sliceText = [...asked, `::${step}`, `::${step}`].join(",");
    status.textContent = "loading…";
    try {
      const got = await fetchArray(ctx, sliceText, controller.signal, ctx.path, dtype);
      const s = got.shape.length >= 2 ? got.shape.slice(-2) : [1, got.data.length];
      plane = { data: got.data, shape: s, index: asked };
      status.textContent = "";
      problem.replaceChildren();
      canvas.dataset.plane = asked.join(",");
      draw();
    } catch (err) {
      if (err.name === "AbortError") return;
      status.textContent = "";
      problem.replaceChildren(errorBox(`Could not read the image: ${err.message}`));
    }
  }
  const refetch = debounce(() => {
    saveState();
    load();
  }, 120);

  function draw() {
    if (!plane) return;
    const [r, c] = plane.shape;
    if (!shown) shown = range(plane.data, CLIPS[state.clip], state.scale === "log");
    const { lo, hi } = shown;
    const lut = COLORMAPS[state.cmap];
    canvas.width = c;
    canvas.height = r;
    const g = canvas.getContext("2d");
    const img = g.createImageData(c, r);
    paint(img.data, plane.data, lut, lo, hi, state.scale === "log");
    g.putImageData(img, 0, 0);
    bar.style.background = gradientCss(state.cmap);
    barLow.textContent = formatValue(lo);
    barHigh.textContent = formatValue(hi);
    bar.title = `${state.scale} scale, ${clipSelect.selectedOptions[0].textContent}`;
    canvas.dataset.cmap = state.cmap;
    canvas.dataset.scale = state.scale;
    showValue(); // the value under a resting pointer follows the plane
    performance.mark("bluebroker:image-drawn");
  }

  saveState();
  load();
  return () => {
    refetch.cancel();
    if (controller) controller.abort();
    canvas.removeEventListener("pointermove", onMove);
    canvas.removeEventListener("pointerdown", onMove);
    el.replaceChildren();
  };
}

function select(testid, values, current, label = (v) => v) {
  return selectBox(testid, values, current, { label });
}

/** The [lo, hi] display range: percentiles of a sample of the finite (and, for log, positive)
 * values; lo < hi always, so that a constant image still draws. */
export function range(data, [pLow, pHigh], log) {
  const stride = Math.max(1, Math.ceil(data.length / SAMPLE));
  const sample = new Float64Array(Math.ceil(data.length / stride));
  let n = 0;
  for (let i = 0; i < data.length; i += stride) {
    const v = data[i];
    if (Number.isFinite(v) && (!log || v > 0)) sample[n++] = v;
  }
  if (!n) return { lo: log ? 1 : 0, hi: log ? 10 : 1 };
  const sorted = sample.subarray(0, n).sort(); // typed arrays sort numerically
  const at = (p) => sorted[Math.min(n - 1, Math.round((p / 100) * (n - 1)))];
  const lo = at(pLow);
  let hi = at(pHigh);
  if (!(hi > lo)) hi = log ? lo * 10 : lo + 1;
  return { lo, hi };
}

/**
 * Values -> RGBA through a 256-colour LUT; NaN and (log) non-positive values are transparent.
 * Pixels are written as whole 32-bit words into the ImageData's own buffer (no copy). For
 * 8- and 16-bit integers (detector frames) every possible value is coloured once into a table
 * of at most 65,536 words, so the per-pixel work is one lookup: a 1080x1280 frame is drawn in
 * a few milliseconds even before the JIT has warmed up on a fresh page load.
 */
function paint(rgba, data, lut, lo, hi, log) {
  const pixels = new Uint32Array(rgba.buffer, rgba.byteOffset, rgba.byteLength >> 2);
  const palette = packed(lut);
  const a = log ? Math.log(lo) : lo;
  const scale = 255 / ((log ? Math.log(hi) : hi) - a);
  const colour = (v) => {
    if (log) v = v > 0 ? Math.log(v) : NaN;
    if (v !== v) return 0;
    const t = (v - a) * scale;
    return palette[t <= 0 ? 0 : t >= 255 ? 255 : t | 0];
  };
  const small = SMALL_INTEGERS.get(data.constructor);
  if (small && data.length > small[1] >> 2) { // a tiny plane is cheaper pixel by pixel
    const [offset, size] = small;
    const table = new Uint32Array(size);
    for (let k = 0; k < size; k++) table[k] = colour(k - offset);
    for (let i = 0; i < data.length; i++) pixels[i] = table[data[i] + offset];
    return;
  }
  for (let i = 0; i < data.length; i++) pixels[i] = colour(data[i]);
}

/** Typed arrays whose every value fits a table: [offset to the first index, table size]. */
const SMALL_INTEGERS = new Map([
  [Uint8Array, [0, 256]],
  [Int8Array, [128, 256]],
  [Uint16Array, [0, 65536]],
  [Int16Array, [32768, 65536]],
]);

/** A colormap's 768 RGB bytes as 256 opaque RGBA words in the browser's byte order. */
function packed(lut) {
  const words = new Uint32Array(256);
  const bytes = new Uint8Array(words.buffer);
  for (let k = 0; k < 256; k++) {
    bytes[4 * k] = lut[3 * k];
    bytes[4 * k + 1] = lut[3 * k + 1];
    bytes[4 * k + 2] = lut[3 * k + 2];
    bytes[4 * k + 3] = 255;
  }
  return words;
}

function formatValue(v) {
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(4) : v.toPrecision(6);
}
