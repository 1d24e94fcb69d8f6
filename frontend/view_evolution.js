// Evolution view: for one layer, a filter × step heat map of a filter statistic (heatmap.js),
// its rows in filter order or by their value at the current step; the ten filters with the
// largest value there; line charts of faithfulness and dead filters. A listed filter or a
// cell opens that filter's card (filter_card.js; a cell at that cell's step). A view as
// views.js describes one; also `load` and `draw`, the two halves of `render` (fetching and
// drawing: bench/evolution_fps.py times the drawing alone).

import { getJSON, overSteps } from "./api.js";
import { once } from "./cache.js";
import { lineChart, moveMarker } from "./chart.js";
import { COLORMAPS } from "./colormap.js";
import { el, faithfulnessMeaning, fmt, labelled, message, select } from "./dom.js";
import { isDead } from "./health.js";
import { colourise, heatmap } from "./heatmap.js";

export const label = "Evolution";

// [statistic, what it is, what its largest values say]. The list beside the heat map holds
// the filters with the largest value at the current step, whatever the statistic.
const STATS = [
  ["cos_to_first", "cosine distance to start", "furthest from their start"],
  ["cos_to_prev", "change since previous step", "most changed since the previous step"],
  ["norm", "L2 norm", "largest L2 norm"],
  ["dead_fraction", "dead on probes (fraction)", "dead on the most probes"],
  ["mean_activation", "mean activation", "most active"],
];
const SORTS = [["", "filter number"], ["value", "value at this step, descending"]];
const TOP = 10;

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

// What is made once per answer: a drift answer's colours; the line chart of a faithfulness or
// a dead_fraction answer, moved into each new drawing of the view with its step marker moved
// (500-step charts drawn anew at every step held a scrub to 19-27 steps/s, moved 30-52,
// bench/evolution_fps.py).
const colours = new WeakMap();
const charts = new WeakMap();

export async function load({ state }, run) {
  const common = { run: run.run, layer: layerOf(state, run), mode: state.mode };
  const [drift, dead, faithfulness] = await Promise.all([
    overSteps("filter_drift", { ...common, stat: state.stat }, run.steps[state.mode]),
    overSteps("filter_drift", { ...common, stat: "dead_fraction" }, run.steps[state.mode]),
    overSteps("faithfulness", { run: run.run, mode: state.mode }, run.steps[state.mode]),
  ]);
  return { drift, dead, faithfulness };
}

// Filters by their value in `column`, largest first; ties in filter order, no value last.
function ranked(values, column) {
  const value = (filter) => values[filter][column] ?? -Infinity;
  return values.map((_, filter) => filter).sort((a, b) => value(b) - value(a) || a - b);
}

// Per step: the mean dead fraction of the filters, and the share of filters dead on every probe
// (isDead: from ctx.deadAt on).
function deadShares({ steps, values }, deadAt) {
  const share = [];
  const dead = [];
  steps.forEach((_, s) => {
    let count = 0;
    let sum = 0;
    let deadCount = 0;
    for (const row of values) {
      if (row[s] === null) continue;
      count += 1;
      sum += row[s];
      if (isDead(row[s], deadAt)) deadCount += 1;
    }
    share.push(count ? sum / count : null);
    dead.push(count ? deadCount / count : null);
  });
  return { share, dead };
}

function chartOf(answer, step, make) {
  const figure = once(charts, answer, () => make(answer.steps[0]));
  moveMarker(figure, answer.steps, step);
  return figure;
}

function topList(title, values, byValue, column, step, open) {
  const entries = byValue.slice(0, TOP).map((filter) => {
    const value = values[filter][column];
    return el("li", {}, el("button", { class: "evo-top-entry", dataset: { filter: String(filter), value: value === null ? "" : String(value) }, onclick: () => open(filter) },
      el("span", { text: `filter ${filter}` }), el("span", { class: "evo-value", text: value === null ? "no value" : fmt(value, 4) })));
  });
  return el("aside", { class: "evo-top" }, el("h4", { text: `Top ${TOP} at step ${step}: ${title}` }), el("ol", {}, ...entries),
    el("p", { class: "note", text: "click a filter (or a cell) to open its card" }));
}

export function draw({ state, store, deadAt }, run, step, { drift, dead, faithfulness }) {
  const layer = layerOf(state, run);
  const [, what, top] = STATS.find(([key]) => key === drift.stat) || [drift.stat, drift.stat, "largest"];
  const column = drift.steps.indexOf(step);
  const open = (filter, patch = {}) => store.update({ ...patch, cardlayer: layer, cardchannel: String(filter) });
  const byValue = column >= 0 ? ranked(drift.values, column) : null;
  const sorted = state.evosort === "value" && byValue;
  const sort = labelled("Sort rows", select(SORTS, state.evosort, (evosort) => store.update({ evosort }), { name: "evosort" }));
  const map = drift.steps.length
    ? el("div", { class: "evo-main" },
      heatmap({ colours: once(colours, drift, () => colourise(drift.values, COLORMAPS.viridis)), values: drift.values,
        columns: drift.steps, order: sorted ? byValue : drift.values.map((_, filter) => filter), marker: column,
        rowName: "filter", columnName: "step", onPick: (filter, s) => open(filter, { step: drift.steps[s] }) }),
      byValue ? topList(top, drift.values, byValue, column, step, open) : null)
    : message("empty", `no filter statistics of ${layer} logged yet`);
  // a layer added to the model (or removed from it) since: no column at a step of the other model
  const absent = drift.steps.length && column < 0 ? message("empty", `${layer} has no statistics at step ${step}: the model logged then had no such layer`) : null;
  return el("div", { class: "evolution" },
    el("div", { class: "evo-head" }, el("h3", { text: `${layer} — ${what}` }), sort,
      el("span", { class: "note", text: sorted ? `rows: filters by ${what} at step ${step}, largest first` : "rows: filters in order" })),
    absent, map,
    el("div", { class: "charts" },
      chartOf(faithfulness, step, (marker) => lineChart({ title: `Faithfulness (${faithfulnessMeaning(run)})`, steps: faithfulness.steps,
        marker, yLabel: "probability drop", series: [{ name: "faithfulness", values: faithfulness.values }] })),
      chartOf(dead, step, (marker) => {
        const { share, dead: deadFilters } = deadShares(dead, deadAt);
        return lineChart({ title: `${layer}: dead filters`, steps: dead.steps, marker, yLabel: "share of filters", yRange: [0, 1],
          series: [{ name: "mean dead fraction (share of probes a filter is ≤ 0 on)", values: share },
            { name: "dead on every probe", values: deadFilters }] });
      })));
}

export async function render(ctx, run, step) {
  return draw(ctx, run, step, await load(ctx, run));
}

// Only the warning banner above the view asks for a step's data (its event): ask for the
// neighbours' before a scrub reaches them.
export function prefetch({ state }, run, step) {
  getJSON("event", { run: run.run, step, mode: state.mode }).catch(() => {});
}
