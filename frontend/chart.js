// A line chart of values over steps, in SVG: an x axis of steps and a y axis, both with ticks,
// several named series with a legend, gaps where a value is null, dashed series (a chance
// level drawn in the colour of the series it goes with), a marker at the current step and a
// tooltip naming each series' value at the step under the pointer. Text is set with
// textContent only (series names may come from the data).
//
//   lineChart({ title, steps, series: [{ name, values, dashed, pair }], yLabel, yRange,
//               connectNulls, marker, caption })
//
// steps: x values, ascending; each series' values: one number or null per step. pair: the
// name of the series a dashed one goes with (it takes that series' colour). yRange: [lo, hi]
// kept as the least range shown (values outside it widen it), or undefined for a range fitted
// to the data. connectNulls: join the points on either side of a null (a value that was not
// computed at that step) instead of leaving a gap (a value that is not defined there).

import { el, fmt } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
export const COLOURS = ["#f57c00", "#1e88e5", "#43a047", "#8e24aa", "#e53935", "#00897b"];
const WIDTH = 440;
const HEIGHT = 210;
const PAD = { left: 52, right: 12, top: 10, bottom: 38 };
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

// "M x,y L x,y …": one sub-path per run of values without a null (or over them, connectNulls).
function pathOf(steps, values, x, y, connectNulls) {
  let d = "";
  let pen = false;
  steps.forEach((step, i) => {
    const value = values[i];
    if (value === null || !Number.isFinite(value)) {
      pen = pen && connectNulls;
      return;
    }
    d += `${pen ? "L" : "M"}${x(step).toFixed(2)},${y(value).toFixed(2)} `;
    pen = true;
  });
  return d.trim();
}

export function lineChart({ title, steps, series, yLabel = "", xLabel = "step", yRange, connectNulls = false, marker, caption, format = (v) => fmt(v, 3) }) {
  const colours = new Map();
  series.forEach((one) => {
    if (!one.pair) colours.set(one.name, one.colour || COLOURS[colours.size % COLOURS.length]);
  });
  const colourOf = (one) => one.colour || colours.get(one.pair ? one.pair : one.name) || COLOURS[0];
  const [low, high] = yDomain(series, yRange);
  const first = steps[0] ?? 0;
  const last = steps[steps.length - 1] ?? 0;
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const x = (step) => PAD.left + (last > first ? ((step - first) / (last - first)) * plotWidth : plotWidth / 2);
  const y = (value) => PAD.top + (1 - (value - low) / (high - low)) * plotHeight;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img" });
  chart.append(svg("title", {}, title));
  // axes, ticks and labels
  const axes = svg("g", { class: "axes" });
  axes.append(svg("line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + plotHeight }),
    svg("line", { x1: PAD.left, x2: PAD.left + plotWidth, y1: PAD.top + plotHeight, y2: PAD.top + plotHeight }));
  const yMarks = ticks(low, high);
  // enough decimals that neighbouring ticks read differently (a norm moving within 1.0399…1.0402)
  const spacing = yMarks.length > 1 ? yMarks[1] - yMarks[0] : 0;
  const digits = spacing > 0 ? Math.min(8, Math.max(2, Math.ceil(-Math.log10(spacing)))) : 2;
  for (const value of yMarks) {
    if (value < low || value > high) continue;
    axes.append(svg("line", { class: "grid", x1: PAD.left, x2: PAD.left + plotWidth, y1: y(value), y2: y(value) }),
      svg("text", { class: "y-tick", x: PAD.left - 4, y: y(value) + 3, "text-anchor": "end" }, fmt(value, value !== 0 && Math.abs(value) < 0.1 ? Math.max(3, digits) : digits)));
  }
  const xMarks = last > first ? ticks(first, last, 6).filter((v) => Number.isInteger(v) && v >= first && v <= last) : steps.slice(0, 1);
  for (const value of xMarks) {
    axes.append(svg("line", { x1: x(value), x2: x(value), y1: PAD.top + plotHeight, y2: PAD.top + plotHeight + 4 }),
      svg("text", { class: "x-tick", x: x(value), y: PAD.top + plotHeight + 14, "text-anchor": "middle" }, String(value)));
  }
  axes.append(svg("text", { class: "axis-label", x: PAD.left + plotWidth / 2, y: HEIGHT - 4, "text-anchor": "middle" }, xLabel),
    svg("text", { class: "axis-label", x: 0, y: 0, transform: `translate(11 ${PAD.top + plotHeight / 2}) rotate(-90)`, "text-anchor": "middle" }, yLabel));
  chart.append(axes);
  if (marker !== undefined && steps.includes(marker)) {
    chart.append(svg("line", { class: "marker", x1: x(marker), x2: x(marker), y1: PAD.top, y2: PAD.top + plotHeight }));
  }
  series.forEach((one, index) => {
    const colour = colourOf(one);
    const group = svg("g", { class: one.dashed ? "series dashed" : "series", "data-series": one.name });
    group.append(svg("path", { d: pathOf(steps, one.values, x, y, connectNulls), stroke: colour, "stroke-dasharray": one.dashed ? "5 4" : null }));
    const finite = (i) => one.values[i] !== null && Number.isFinite(one.values[i]);
    steps.forEach((step, i) => {
      const value = one.values[i];
      const alone = !connectNulls && !finite(i - 1) && !finite(i + 1);  // no line through it
      if (!finite(i) || (steps.length > MAX_DOTS && !alone)) return;
      group.append(svg("circle", { cx: x(step).toFixed(2), cy: y(value).toFixed(2), r: one.dashed ? 1.8 : 2.6, fill: colour, "data-step": step, "data-index": index }));
    });
    chart.append(group);
  });
  // hover: the step nearest the pointer, each series' value there
  const guide = svg("line", { class: "guide", y1: PAD.top, y2: PAD.top + plotHeight, visibility: "hidden" });
  const area = svg("rect", { class: "hover", x: PAD.left, y: PAD.top, width: plotWidth, height: plotHeight, fill: "transparent" });
  chart.append(guide, area);
  const tooltip = el("div", { class: "chart-tooltip", hidden: true });
  const figure = el("figure", { class: "chart-card" }, el("figcaption", { text: title }),
    el("div", { class: "chart-body" }, chart, tooltip),
    legend(series, colourOf),
    caption ? el("p", { class: "note chart-caption", text: caption }) : null);
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
    const left = event.clientX - body.left;
    tooltip.style.left = `${left > body.width / 2 ? left - tooltip.offsetWidth - 12 : left + 12}px`;
    tooltip.style.top = `${Math.max(0, event.clientY - body.top - tooltip.offsetHeight / 2)}px`;
  });
  area.addEventListener("mouseleave", () => {
    tooltip.hidden = true;
    guide.setAttribute("visibility", "hidden");
  });
  return figure;
}

function legend(series, colourOf) {
  return el("div", { class: "chart-legend" }, ...series.map((one) => {
    const swatch = svg("svg", { class: "legend-line", viewBox: "0 0 24 8", width: 24, height: 8 });
    swatch.append(svg("line", { x1: 0, x2: 24, y1: 4, y2: 4, stroke: colourOf(one), "stroke-width": 2, "stroke-dasharray": one.dashed ? "5 4" : null }));
    return el("span", { class: "legend-item" }, swatch, el("span", { text: one.name }));
  }));
}
