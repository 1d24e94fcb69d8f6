// Layers view: every conv layer of the model at the selected step, one table row each: its
// share of dead filters, how far its filters moved from the start and since the previous event,
// its mean filter norm against the first event's, each with a sparkline over training. A layer
// that dies, freezes or whose norm runs away is flagged in words, not only in colour. Rows are
// plain text and one small SVG per value: DenseNet121 has 120 conv layers. A view as views.js
// describes one.

import { overSteps } from "./api.js";
import { once } from "./cache.js";
import { sparkPath, sparkX, sparkline } from "./chart.js";
import { el, fmt, message } from "./dom.js";

export const label = "Layers";

const DEAD = 0.5;  // more than half the filters dead on every probe, as the banner warns (health.js)
const FROZEN = 1e-6;  // mean cosine distance to the previous event's filters
const NORM_BAND = [0.5, 2];  // mean norm halved or doubled since the first event

const COLUMNS = [
  ["dead_fraction", "dead filters", "share of the layer's filters ≤ 0 on every probe"],
  ["drift", "drift from start", "mean over its filters of the cosine distance to their first logged kernels"],
  ["change", "change since previous", "mean over its filters of the cosine distance to their kernels at the previous event"],
  ["norm_trend", "norm trend", "mean filter norm ÷ that at the first event"],
];

export function toolbar() {
  return [];
}

// The lines do not change with the step: made once per answer (moving through the steps of a
// model of 120 layers and 400 steps would remake 480 lines of 400 points each time).
const lines = new WeakMap();

function linesOf(summary) {
  return once(lines, summary, () => summary.layers.map((layer) => (layer.error ? null
    : Object.fromEntries(COLUMNS.map(([key]) => [key, sparkPath(summary.steps, layer[key])])))));
}

// [word, why] for each way the layer looks unhealthy at step `index`.
function flags(layer, index) {
  const at = (key) => layer[key][index] ?? null;
  const out = [];
  const dead = at("dead_fraction");
  if (dead !== null && dead > DEAD) out.push(["dead", `${Math.round(dead * 100)} % of its filters are ≤ 0 on every probe`]);
  const change = at("change");
  if (index > 0 && change !== null && change < FROZEN) out.push(["frozen", `its filters moved less than ${FROZEN} (cosine distance) since the previous event`]);
  const trend = at("norm_trend");
  if (trend !== null && trend < NORM_BAND[0]) out.push(["norm shrank", `its mean filter norm is ×${fmt(trend, 2)} that at the first event`]);
  if (trend !== null && trend > NORM_BAND[1]) out.push(["norm grew", `its mean filter norm is ×${fmt(trend, 2)} that at the first event`]);
  return out;
}

function row(layer, paths, x, index, store) {
  const name = el("td", { class: "layer-name" }, el("button", {
    class: "link", text: layer.layer, title: "its filters over training (Evolution)",
    onclick: () => store.update({ view: "evolution", evolayer: layer.layer }),
  }));
  const filters = el("td", { class: "filters", text: layer.logged ? `${layer.filters} · logged` : String(layer.filters) });
  if (layer.error) {  // its statistics could not be read: said in its row, the others shown
    return el("tr", { class: "damaged" }, name, filters, el("td", { class: "message error", colspan: COLUMNS.length + 1, text: layer.error }));
  }
  const found = flags(layer, index);
  return el("tr", { class: found.length ? "flagged" : null }, name, filters,
    ...COLUMNS.map(([key]) => {
      const value = layer[key][index] ?? null;
      return el("td", { class: "value", dataset: { stat: key } },
        el("span", { class: "number", text: value === null ? "—" : fmt(value, 3) }), sparkline(paths[key], x));
    }),
    el("td", { class: "flags" }, ...found.map(([word, why]) => el("span", { class: `flag ${word.replace(" ", "-")}`, text: word, title: why }))));
}

export async function render({ state, store }, run, step) {
  const summary = await overSteps("layer_summary", { run: run.run, mode: state.mode }, run.steps[state.mode]);
  const index = summary.steps.indexOf(step);
  if (index < 0) return message("error", `no layer statistics at ${state.mode} step ${step}`);
  const paths = linesOf(summary);
  const x = sparkX(summary.steps)(step);
  const head = el("tr", {}, el("th", { text: "layer" }), el("th", { text: "filters" }),
    ...COLUMNS.map(([, name, meaning]) => el("th", { text: name, title: meaning })), el("th", { text: "flags" }));
  return el("div", { class: "layers-view" },
    el("p", { class: "note", text: `${summary.layers.length} conv layers in model order at step ${step}; sparklines over ${summary.steps.length} steps, the line marks this one. "logged": its feature maps and kernels are logged. Flags: dead (more than half its filters ≤ 0 on every probe), frozen (change since previous below ${FROZEN}), norm shrank / grew (mean norm below ×${NORM_BAND[0]} or above ×${NORM_BAND[1]} that at the first event). Click a layer for its filters over training.` }),
    el("table", { class: "layers" }, el("thead", {}, head),
      el("tbody", {}, ...summary.layers.map((layer, i) => row(layer, paths[i], x, index, store)))));
}
