// A rows × columns heat map: one canvas pixel per cell, scaled by CSS (pixelated), with a
// column axis of round ticks, a row axis naming the rows shown at its ticks, a colour scale
// with its values, grey for cells without a value, a marker at one column and a tooltip
// naming the cell under the pointer.
//
//   const colours = colourise(values, lut);  // once per data: values[row][column], null = none
//   heatmap({ colours, values, columns, order, marker, rowName, columnName, onPick })
//
// columns: the columns' numbers (steps), ascending; order: the data row shown at each row
// (rows sorted, or not); marker: the column to mark (-1: none); onPick(row, column): a cell
// was clicked. A view drawn again at every step of a scrub makes a new heat map each time:
// its canvas is the colours' own, moved into it, and drawn again only in a new order, by
// copying rows of colours computed once (bench/evolution_fps.py).

import { once } from "./cache.js";
import { ticks } from "./chart.js";
import { canvasPoint, el, extent, fmt, placeTooltip } from "./dom.js";

const NONE = [128, 128, 128];  // the colour of a cell without a value
const ROW_PX = 14;  // rows at least this tall each get a label
const ROW_LABEL_PX = 24;  // least distance between two row labels, when not every row has one
const SCALE_STOPS = 32;  // of the colour scale's gradient

// { pixels: one RGBA word per cell, row after row; rows, columns, low, high, lut, canvas }
// of `values`.
export function colourise(values, lut) {
  const rows = values.length;
  const columns = rows ? values[0].length : 0;
  let low;
  let high;
  for (const row of values) {
    const [lo, hi] = extent(row);
    if (lo !== undefined && (low === undefined || lo < low)) low = lo;
    if (hi !== undefined && (high === undefined || hi > high)) high = hi;
  }
  const rgba = new Uint8ClampedArray(rows * columns * 4);
  const span = high > low ? high - low : 0;
  values.forEach((row, r) => {
    for (let c = 0; c < columns; c += 1) {
      const value = row[c];
      const i = (r * columns + c) * 4;
      if (value === null) {
        rgba.set(NONE, i);
      } else {
        const level = span ? Math.round(((value - low) / span) * 255) * 3 : 0;
        rgba[i] = lut[level];
        rgba[i + 1] = lut[level + 1];
        rgba[i + 2] = lut[level + 2];
      }
      rgba[i + 3] = 255;
    }
  });
  const canvas = el("canvas", { class: "drift", width: columns, height: rows });
  return { pixels: new Uint32Array(rgba.buffer), rows, columns, low, high, lut, canvas, image: null, order: null };
}

// The colours' canvas with its rows in `order`.
function canvasOf(colours, order) {
  const { pixels, rows, columns, canvas } = colours;
  if (colours.order && order.every((row, at) => row === colours.order[at])) return canvas;
  colours.image ||= new ImageData(columns, rows);
  const out = new Uint32Array(colours.image.data.buffer);
  order.forEach((row, at) => out.set(pixels.subarray(row * columns, (row + 1) * columns), at * columns));
  canvas.getContext("2d").putImageData(colours.image, 0, 0);
  colours.order = order;
  return canvas;
}

// [value, position from 0 to 1 across the columns] of round column numbers, each placed
// between the columns it falls between (steps need not be evenly spaced); no more ticks than
// columns, so that a few columns are not labelled between them.
function columnTicks(columns) {
  const first = columns[0];
  const last = columns[columns.length - 1];
  if (!(last > first)) return [[first, 0.5 / columns.length]];
  let i = 0;
  return ticks(first, last, Math.min(6, columns.length)).filter((v) => Number.isInteger(v) && v >= first && v <= last).map((v) => {
    while (i + 1 < columns.length && columns[i + 1] <= v) i += 1;
    const within = i + 1 < columns.length ? (v - columns[i]) / (columns[i + 1] - columns[i]) : 0;
    return [v, (i + within + 0.5) / columns.length];
  });
}

// The rows that get a label: all of them when they fit, else round row numbers.
function rowTicks(rows, heightPx) {
  if (rows * ROW_PX <= heightPx) return [...Array(rows).keys()];
  return ticks(0, rows - 1, Math.max(2, Math.floor(heightPx / ROW_LABEL_PX))).filter((r) => Number.isInteger(r) && r < rows);
}

function positioned(className, text, style) {
  const node = el("span", { class: className, text });
  Object.assign(node.style, style);
  return node;
}

const percent = (fraction) => `${(100 * fraction).toFixed(3)}%`;

// A CSS gradient of a colour table, from its first colour at the bottom to its last at the top.
const gradients = new WeakMap();

function gradientOf(lut) {
  return once(gradients, lut, () => {
    const stops = Array.from({ length: SCALE_STOPS + 1 }, (_, i) => {
      const level = Math.round((i / SCALE_STOPS) * 255) * 3;
      return `rgb(${lut[level]}, ${lut[level + 1]}, ${lut[level + 2]}) ${percent(i / SCALE_STOPS)}`;
    });
    return `linear-gradient(to top, ${stops.join(", ")})`;
  });
}

// A vertical bar of the colour table, high at the top, with its min, max and round values between.
function scaleBar({ low, high, lut }) {
  const bar = positioned("evo-scale-bar", "", { backgroundImage: gradientOf(lut) });
  const scale = el("div", { class: "evo-scale", dataset: { min: String(low ?? ""), max: String(high ?? "") } }, bar);
  if (low === undefined) return scale;
  const at = (value) => ({ top: percent(high > low ? 1 - (value - low) / (high - low) : 0.5) });
  const inner = high > low ? ticks(low, high, 4).filter((v) => v > low + (high - low) * 0.08 && v < high - (high - low) * 0.08) : [];
  scale.append(positioned("evo-scale-tick evo-scale-max", fmt(high, 4), at(high)),
    ...inner.map((v) => positioned("evo-scale-tick", fmt(v, 3), at(v))),
    ...(high > low ? [positioned("evo-scale-tick evo-scale-min", fmt(low, 4), at(low))] : []));
  return scale;
}

export function heatmap({ colours, values, columns, order, marker = -1, rowName = "row", columnName = "column", onPick }) {
  const { rows } = colours;
  const heightPx = Math.min(512, Math.max(256, 2 * rows));
  const canvas = canvasOf(colours, order);
  const tooltip = el("div", { class: "evo-tooltip", hidden: true });
  const plot = el("div", { class: "evo-plot" }, canvas, tooltip);
  if (marker >= 0) plot.append(positioned("evo-marker", "", { left: percent((marker + 0.5) / columns.length) }));
  const rowAxis = el("div", { class: "evo-rows", dataset: { order: order.join(",") } },
    ...rowTicks(rows, heightPx).map((r) => positioned("evo-row-tick", String(order[r]), { top: percent((r + 0.5) / rows) })));
  const columnAxis = el("div", { class: "evo-columns" },
    ...columnTicks(columns).map(([v, x]) => positioned("evo-column-tick", String(v), { left: percent(x) })));
  const grid = el("div", { class: "evo-grid" }, rowAxis, plot, scaleBar(colours),
    el("span", { class: "evo-axis-name", text: rowName }), columnAxis, el("span"),
    el("span"), el("span", { class: "evo-axis-name", text: columnName }));
  grid.style.setProperty("--evo-height", `${heightPx}px`);

  const cell = (event) => {  // [data row, column] under the pointer, or null
    const [x, y] = canvasPoint(canvas, event);
    const [r, c] = [Math.floor(y), Math.floor(x)];
    return r >= 0 && r < rows && c >= 0 && c < columns.length ? [order[r], c] : null;
  };
  // on the plot, not the canvas: the canvas moves on to the next heat map drawn
  plot.addEventListener("mousemove", (event) => {
    const at = cell(event);
    tooltip.hidden = !at;
    if (!at) return;
    const [row, c] = at;
    const value = values[row][c];
    Object.assign(tooltip.dataset, { [rowName]: String(row), [columnName]: String(columns[c]), value: value === null ? "" : String(value) });
    tooltip.replaceChildren(el("span", { text: `${rowName} ${row}` }), el("span", { text: `${columnName} ${columns[c]}` }),
      el("span", { class: "evo-value", text: value === null ? "no value" : fmt(value, 4) }));
    const box = plot.getBoundingClientRect();
    placeTooltip(tooltip, box, event, event.clientY - box.top - tooltip.offsetHeight - 8);
  });
  plot.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  plot.addEventListener("click", (event) => {
    const at = cell(event);
    if (at) onPick(...at);
  });
  const legend = el("div", { class: "evo-legend" },
    el("span", { class: "legend-item" }, el("span", { class: "evo-swatch evo-none" }), el("span", { text: "no value (not defined at that step)" })),
    marker >= 0 ? el("span", { class: "legend-item" }, el("span", { class: "evo-swatch evo-current" }), el("span", { text: `${columnName} ${columns[marker]} (current)` })) : null);
  return el("figure", { class: "evo-heatmap" }, grid, legend);
}
