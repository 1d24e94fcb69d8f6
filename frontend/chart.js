// A line chart of values over steps, in SVG: an x axis of steps and a y axis, both with ticks,
// several named series with a legend, gaps where a value is null, dashed series (a chance
// level drawn in the colour of the series it goes with), a marker at the current step and a
// tooltip naming each series' value at the step under the pointer. Text is set with
// textContent only (series names may come from the data).
//
//   lineChart({ title, steps, series: [{ name, values, dashed, pair, colour }], yLabel, xLabel,
//               yRange, connectNulls, marker, caption, format })
//
// steps: x values, ascending; each series' values: one number or null per step. pair: the
// name of the series a dashed one goes with (it takes that series' colour). yRange: [lo, hi]
// kept as the least range shown (values outside it widen it), or undefined for a range fitted
// to the data. connectNulls: join the points on either side of a null (a value that was not
// computed at that step) instead of leaving a gap (a value that is not defined there).
// format: a value as the tooltip writes it. moveMarker moves the marker of a chart drawn once
// and shown again at other steps. The pieces other drawings share are exported too: svg,
// ticks, stepScale and linePath (the heat map's axis), and sparklines (sparkX, sparkPath, sparkline).

import { el, extent, fmt, placeTooltip } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
export const COLOURS = ["#f57c00", "#1e88e5", "#43a047", "#8e24aa", "#e53935", "#00897b"];
const WIDTH = 440;
const HEIGHT = 210;
const PAD = { left: 52, right: 12, top: 10, bottom: 38 };
const PLOT_WIDTH = WIDTH - PAD.left - PAD.right;
const PLOT_HEIGHT = HEIGHT - PAD.top - PAD.bottom;
const BOTTOM = PAD.top + PLOT_HEIGHT;  // the x axis
// Series longer than this are drawn as lines without a dot per step (but for points with no
// line through them): a chart of hundreds of steps would otherwise add as many SVG nodes, which
// scrubbing the step bar lays out again at every frame (bench/evolution_fps.py); the tooltip
// names the values either way.
const MAX_DOTS = 100;

// An SVG element with attributes (undefined and null ones left out) and text set as text.
export function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

// About `count` round tick values (1, 2 or 5 times a power of ten) covering [lo, hi].
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i += 1) out.push(Number((i * step).toPrecision(12)));
  return out;
}

// [lo, hi] of the y axis: the data's range (and the least range asked for), widened to ticks.
export function yDomain(series, yRange) {
  let lo = yRange ? yRange[0] : Infinity;
  let hi = yRange ? yRange[1] : -Infinity;
  for (const { values } of series) {
    for (const value of values) {
      if (value === null || !Number.isFinite(value)) continue;
      lo = Math.min(lo, value);
      hi = Math.max(hi, value);
    }
  }
  if (!Number.isFinite(lo)) return [0, 1];  // nothing to show
  if (hi === lo) {
    const pad = Math.abs(lo) * 0.1 || 0.5;
    [lo, hi] = [lo - pad, hi + pad];
  }
  if (yRange) return [lo, hi];
  const marks = ticks(lo, hi);
  const step = marks.length > 1 ? marks[1] - marks[0] : hi - lo;
  return [Math.floor(lo / step + 1e-9) * step, Math.ceil(hi / step - 1e-9) * step];
}

// The x of a step: linear in step across `span` pixels from `left`, the middle for one step.
export function stepScale(steps, left, span) {
  const first = steps[0] ?? 0;
  const last = steps[steps.length - 1] ?? 0;
  return (step) => left + (last > first ? ((step - first) / (last - first)) * span : span / 2);
}

// "M x,y L x,y …" of values over steps, coordinates to `digits` decimals: one sub-path per run
// of values without a null (or over them, connectNulls).
export function linePath(steps, values, x, y, { connectNulls = false, digits = 2 } = {}) {
  let d = "";
  let pen = false;
  steps.forEach((step, i) => {
    const value = values[i];
    if (value === null || !Number.isFinite(value)) {
      pen = pen && connectNulls;
      return;
    }
    d += `${pen ? "L" : "M"}${x(step).toFixed(digits)},${y(value).toFixed(digits)} `;
    pen = true;
  });
  return d.trim();
}

// The chart's x and y in SVG units: steps across the plot, [low, high] from its bottom to top.
function scales(steps, [low, high]) {
  return {
    x: stepScale(steps, PAD.left, PLOT_WIDTH),
    y: (value) => PAD.top + (1 - (value - low) / (high - low)) * PLOT_HEIGHT,
  };
}

// A series' colour: its own, the colour of the series it is paired with, or the next of
// COLOURS in the order of the unpaired series.
function colouring(series) {
  const colours = new Map();
  series.forEach((one) => {
    if (!one.pair) colours.set(one.name, one.colour || COLOURS[colours.size % COLOURS.length]);
  });
  return (one) => one.colour || colours.get(one.pair ? one.pair : one.name) || COLOURS[0];
}

// Enough decimals that neighbouring ticks read differently (a norm moving within 1.0399…1.0402).
function tickText(value, marks) {
  const spacing = marks.length > 1 ? marks[1] - marks[0] : 0;
  const digits = spacing > 0 ? Math.min(8, Math.max(2, Math.ceil(-Math.log10(spacing)))) : 2;
  return fmt(value, value !== 0 && Math.abs(value) < 0.1 ? Math.max(3, digits) : digits);
}

// Grid lines and values of the y axis.
function yTicks(y, [low, high]) {
  const marks = ticks(low, high);
  return marks.filter((value) => value >= low && value <= high).flatMap((value) => [
    svg("line", { class: "grid", x1: PAD.left, x2: PAD.left + PLOT_WIDTH, y1: y(value), y2: y(value) }),
    svg("text", { class: "y-tick", x: PAD.left - 4, y: y(value) + 3, "text-anchor": "end" }, tickText(value, marks)),
  ]);
}

// Tick marks and round steps (integers) of the x axis; the one step, when there is one.
function xTicks(x, steps) {
  const first = steps[0] ?? 0;
  const last = steps[steps.length - 1] ?? 0;
  const marks = last > first ? ticks(first, last, 6).filter((v) => Number.isInteger(v) && v >= first && v <= last) : steps.slice(0, 1);
  return marks.flatMap((value) => [
    svg("line", { x1: x(value), x2: x(value), y1: BOTTOM, y2: BOTTOM + 4 }),
    svg("text", { class: "x-tick", x: x(value), y: BOTTOM + 14, "text-anchor": "middle" }, String(value)),
  ]);
}

function axes({ x, y }, domain, steps, xLabel, yLabel) {
  const group = svg("g", { class: "axes" });
  group.append(svg("line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: BOTTOM }),
    svg("line", { x1: PAD.left, x2: PAD.left + PLOT_WIDTH, y1: BOTTOM, y2: BOTTOM }),
    ...yTicks(y, domain), ...xTicks(x, steps),
    svg("text", { class: "axis-label", x: PAD.left + PLOT_WIDTH / 2, y: HEIGHT - 4, "text-anchor": "middle" }, xLabel),
    svg("text", { class: "axis-label", x: 0, y: 0, transform: `translate(11 ${PAD.top + PLOT_HEIGHT / 2}) rotate(-90)`, "text-anchor": "middle" }, yLabel));
  return group;
}

// One series: its line, and a dot per value (past MAX_DOTS steps, only where no line passes).
function seriesGroup(one, index, steps, { x, y }, colour, connectNulls) {
  const group = svg("g", { class: one.dashed ? "series dashed" : "series", "data-series": one.name });
  group.append(svg("path", { d: linePath(steps, one.values, x, y, { connectNulls }), stroke: colour, "stroke-dasharray": one.dashed ? "5 4" : null }));
  const finite = (i) => one.values[i] !== null && Number.isFinite(one.values[i]);
  steps.forEach((step, i) => {
    const alone = !connectNulls && !finite(i - 1) && !finite(i + 1);  // no line through it
    if (!finite(i) || (steps.length > MAX_DOTS && !alone)) return;
    group.append(svg("circle", { cx: x(step).toFixed(2), cy: y(one.values[i]).toFixed(2), r: one.dashed ? 1.8 : 2.6, fill: colour, "data-step": step, "data-index": index }));
  });
  return group;
}

// The hover layer over the plot: a guide line at the step nearest the pointer and a tooltip
// naming each series' value there. Appends the guide and the hover area to the chart and
// returns the tooltip, which goes beside the chart.
function hover(chart, steps, series, x, xLabel, format) {
  const guide = svg("line", { class: "guide", y1: PAD.top, y2: BOTTOM, visibility: "hidden" });
  const area = svg("rect", { class: "hover", x: PAD.left, y: PAD.top, width: PLOT_WIDTH, height: PLOT_HEIGHT, fill: "transparent" });
  chart.append(guide, area);
  const tooltip = el("div", { class: "chart-tooltip", hidden: true });
  area.addEventListener("mousemove", (event) => {
    if (!steps.length) return;
    const box = chart.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * WIDTH;
    let nearest = 0;
    steps.forEach((step, i) => {
      if (Math.abs(x(step) - px) < Math.abs(x(steps[nearest]) - px)) nearest = i;
    });
    const step = steps[nearest];
    guide.setAttribute("x1", x(step));
    guide.setAttribute("x2", x(step));
    guide.setAttribute("visibility", "visible");
    tooltip.replaceChildren(el("div", { class: "tooltip-step", text: `${xLabel} ${step}` }),
      ...series.map((one) => el("div", { class: "tooltip-row", dataset: { series: one.name } },
        el("span", { class: "tooltip-name", text: `${one.name}: ` }),
        el("span", { class: "tooltip-value", text: one.values[nearest] === null ? "—" : format(one.values[nearest]) }))));
    tooltip.hidden = false;
    const body = tooltip.parentElement.getBoundingClientRect();
    placeTooltip(tooltip, body, event, event.clientY - body.top - tooltip.offsetHeight / 2);
  });
  area.addEventListener("mouseleave", () => {
    tooltip.hidden = true;
    guide.setAttribute("visibility", "hidden");
  });
  return tooltip;
}

export function lineChart({ title, steps, series, yLabel = "", xLabel = "step", yRange, connectNulls = false, marker, caption, format = (v) => fmt(v, 3) }) {
  const colourOf = colouring(series);
  const domain = yDomain(series, yRange);
  const scale = scales(steps, domain);
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img" });
  chart.append(svg("title", {}, title), axes(scale, domain, steps, xLabel, yLabel));
  if (marker !== undefined && steps.includes(marker)) {
    chart.append(svg("line", { class: "marker", x1: scale.x(marker), x2: scale.x(marker), y1: PAD.top, y2: BOTTOM }));
  }
  chart.append(...series.map((one, index) => seriesGroup(one, index, steps, scale, colourOf(one), connectNulls)));
  const tooltip = hover(chart, steps, series, scale.x, xLabel, format);
  return el("figure", { class: "chart-card" }, el("figcaption", { text: title }),
    el("div", { class: "chart-body" }, chart, tooltip),
    legend(series, colourOf),
    caption ? el("p", { class: "note chart-caption", text: caption }) : null);
}

// Moves a chart's step marker to `step` of the chart's `steps`, hidden where it has no such
// step: a chart drawn once and shown again at other steps (view_evolution.js).
export function moveMarker(figure, steps, step) {
  const line = figure.querySelector("line.marker");
  if (!line) return;
  const x = String(stepScale(steps, PAD.left, PLOT_WIDTH)(step));
  line.setAttribute("x1", x);
  line.setAttribute("x2", x);
  line.setAttribute("visibility", steps.includes(step) ? "visible" : "hidden");
}

function legend(series, colourOf) {
  return el("div", { class: "chart-legend" }, ...series.map((one) => {
    const swatch = svg("svg", { class: "legend-line", viewBox: "0 0 24 8", width: 24, height: 8 });
    swatch.append(svg("line", { x1: 0, x2: 24, y1: 4, y2: 4, stroke: colourOf(one), "stroke-width": 2, "stroke-dasharray": one.dashed ? "5 4" : null }));
    return el("span", { class: "legend-item" }, swatch, el("span", { text: one.name }));
  }));
}

// Sparklines: a value over the steps in a small SVG on its own range (the Layers and Methods
// views' table cells), a dashed line marking the step shown.
const SPARK = { width: 72, height: 18, pad: 2 };

// The x position of each step in a sparkline.
export function sparkX(steps) {
  return stepScale(steps, SPARK.pad, SPARK.width - 2 * SPARK.pad);
}

// A sparkline's line: the values over the steps on their own range, gaps at null (or, with
// connectNulls, joined across them).
export function sparkPath(steps, values, connectNulls = false) {
  const { height, pad } = SPARK;
  const [low, high] = extent(values);
  const y = (v) => (high > low ? height - pad - ((v - low) / (high - low)) * (height - 2 * pad) : height / 2);
  return linePath(steps, values, sparkX(steps), y, { digits: 1, connectNulls });
}

// The sparkline of path `d` with the marker at x.
export function sparkline(d, x) {
  const { width, height } = SPARK;
  const chart = svg("svg", { class: "spark", viewBox: `0 0 ${width} ${height}`, width, height, "aria-hidden": "true" });
  chart.append(svg("line", { class: "now", x1: x, x2: x, y1: 0, y2: height }), svg("path", { d }));
  return chart;
}
