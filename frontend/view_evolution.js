// Evolution view: for one layer, a filter × step heat map of a filter statistic (click a
// cell to see that filter at that step), and line charts of faithfulness and dead filters.

import { getJSON } from "./api.js";
import { lineChart } from "./chart.js";
import { COLORMAPS } from "./colormap.js";
import { canvasPoint, el, extent, faithfulnessMeaning, fmt, labelled, select } from "./dom.js";
import { isDead } from "./health.js";

export const label = "Evolution";

const STATS = [
  ["cos_to_first", "cosine distance to start"], ["cos_to_prev", "change since previous step"],
  ["norm", "L2 norm"], ["dead_fraction", "dead on probes (fraction)"], ["mean_activation", "mean activation"],
];

function layerOf(state, run) {
  const layers = Object.keys(run.conv_layers);
  for (const name of [state.evolayer, state.layer]) if (layers.includes(name)) return name;
  return run.gradcam_layer;
}

export function toolbar({ state, store, runs }) {
  return [
    labelled("Layer", select(Object.keys(runs[0].conv_layers), layerOf(state, runs[0]), (evolayer) => store.update({ evolayer }), { name: "evolayer" })),
    labelled("Statistic", select(STATS, state.stat, (stat) => store.update({ stat }), { name: "stat" })),
  ];
}

function heatmap(drift, currentStep, onPick) {
  const { values, steps } = drift;
  const filters = values.length;
  const [low, high] = extent(values.flat());
  const canvas = el("canvas", { class: "drift", width: steps.length, height: filters });
  const context = canvas.getContext("2d");
  const image = context.createImageData(steps.length, filters);
  const lut = COLORMAPS.viridis;
  for (let f = 0; f < filters; f += 1) {
    for (let s = 0; s < steps.length; s += 1) {
      const value = values[f][s];
      const i = (f * steps.length + s) * 4;
      if (value === null) {
        image.data.set([128, 128, 128, 255], i);
      } else {
        const level = high > low ? Math.round(((value - low) / (high - low)) * 255) : 0;
        image.data.set([lut[level * 3], lut[level * 3 + 1], lut[level * 3 + 2], 255], i);
      }
    }
  }
  context.putImageData(image, 0, 0);
  const tooltip = el("div", { class: "tooltip", hidden: true });
  const cell = (event_) => {  // canvas pixels are cells: x = step, y = filter
    const [x, y] = canvasPoint(canvas, event_);
    return [Math.floor(y), Math.floor(x)];
  };
  canvas.addEventListener("mousemove", (event_) => {
    const [f, s] = cell(event_);
    tooltip.hidden = !(f >= 0 && f < filters && s >= 0 && s < steps.length);
    if (!tooltip.hidden) tooltip.textContent = `filter ${f} · step ${steps[s]} · ${fmt(values[f][s], 4)} — click to see it`;
  });
  canvas.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  canvas.addEventListener("click", (event_) => {
    const [f, s] = cell(event_);
    if (f >= 0 && f < filters && s >= 0 && s < steps.length) onPick(f, steps[s]);
  });
  const index = steps.indexOf(currentStep);
  const marker = index >= 0 ? el("div", { class: "step-marker", style: `left:${(100 * (index + 0.5)) / steps.length}%` }) : null;
  const legend = el("p", { class: "note", text: `rows: ${filters} filters · columns: ${steps.length} steps · colour from ${fmt(low, 4)} (dark) to ${fmt(high, 4)} (yellow); grey = not defined` });
  return el("div", {}, el("div", { class: "drift-wrap" }, canvas, marker), tooltip, legend);
}

export async function render({ state, store }, run, step) {
  const layer = layerOf(state, run);
  const common = { run: run.run, layer, mode: state.mode };
  const [drift, dead, faithfulness] = await Promise.all([
    getJSON("filter_drift", { ...common, stat: state.stat }, { fresh: true }),
    getJSON("filter_drift", { ...common, stat: "dead_fraction" }, { fresh: true }),
    getJSON("faithfulness", { run: run.run, mode: state.mode }, { fresh: true }),
  ]);
  const pick = (filter, pickedStep) => {
    const patch = { step: pickedStep, channel: filter };
    if (run.layers.includes(layer)) Object.assign(patch, { view: "activations", layer });
    else patch.view = "filters";
    store.update(patch);
  };
  const columns = dead.steps.map((_, s) => dead.values.map((row) => row[s]).filter((v) => v !== null));
  const deadShare = columns.map((column) => (column.length ? column.reduce((a, b) => a + b, 0) / column.length : null));
  const deadFilters = columns.map((column) => (column.length ? column.filter(isDead).length / column.length : null));
  return el("div", {},
    el("h3", { text: `${layer} — ${STATS.find(([key]) => key === state.stat)[1]}` }),
    heatmap(drift, step, pick),
    el("div", { class: "charts" },
      lineChart({ title: `Faithfulness (${faithfulnessMeaning(run)})`, steps: faithfulness.steps, marker: step,
        yLabel: "probability drop", series: [{ name: "faithfulness", values: faithfulness.values }] }),
      lineChart({ title: `${layer}: dead filters`, steps: dead.steps, marker: step, yLabel: "share of filters", yRange: [0, 1],
        series: [{ name: "mean dead fraction (share of probes a filter is ≤ 0 on)", values: deadShare },
          { name: "dead on every probe", values: deadFilters }] })));
}
