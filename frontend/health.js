// The warnings shown at the top of the tab for a run at a step: a model that predicts one
// class for every probe, a logged layer whose filters are mostly dead. Both make its heat maps
// and feature maps unreadable, and a new user should not have to find that out from them.

import { getJSON } from "./api.js";
import { Recent } from "./cache.js";
import { className, el } from "./dom.js";

// A filter is dead at a step when it is dead (max <= 0) on every probe: dead_fraction 1, as
// the Evolution view's statistic defines it. Statistics are stored in 8 bits over their range
// across the layer's filters (docs/format.md): a dead filter reads 1 within float
// rounding, a filter dead on N - 1 of N <= 256 probes at most 0.9961 + 1/508 = 0.9981. So a
// filter reads dead from `deadAt` on, a threshold between the two: DEAD_AT in
// tb_cnnviz/reading/series.py defines it, and the `runs` route sends it as dead_at (views have
// it as ctx.deadAt).
export function isDead(deadFraction, deadAt) {
  return deadFraction !== null && deadFraction >= deadAt;
}

// The dead_fraction of every filter of a logged layer at every step: one `filter_drift`
// request per layer and run, so that moving through steps costs no request beyond each step's
// `event`, which every view fetches. Steps logged after it was asked for (a run still
// training) are asked for one at a time with `stats`.
const deadFractions = new Recent(64);

function deadFractionsOf(run, mode, layer) {
  return deadFractions.get(JSON.stringify([run.run, mode, layer]),
    () => getJSON("filter_drift", { run: run.run, layer, stat: "dead_fraction", mode }, { fresh: true }));
}

// { dead_fraction: [one per filter] } of a layer at a step.
async function statsAt(run, mode, step, layer) {
  const drift = await deadFractionsOf(run, mode, layer).catch(() => null);
  const column = drift ? drift.steps.indexOf(step) : -1;
  if (column < 0) return getJSON("stats", { run: run.run, step, mode, layer });
  return { dead_fraction: drift.values.map((row) => row[column]) };
}

// "all N probes predicted X" when every probe's prediction is the same class (none NaN).
export function oneClass(run, predictions) {
  const { predicted, probability } = predictions;
  if (predicted.length < 2 || probability.some((p) => p === null)) return null;
  if (!predicted.every((c) => c === predicted[0])) return null;
  return `all ${predicted.length} probes predicted ${className(run, predicted[0])}`;
}

// "<layer>: X % of filters dead" for a logged layer with more than half its filters dead.
export function deadLayer(layer, stats, deadAt) {
  const values = stats?.dead_fraction;
  if (!values?.length) return null;
  const dead = values.filter((value) => isDead(value, deadAt)).length;
  if (dead * 2 <= values.length) return null;
  return `${layer}: ${Math.round((100 * dead) / values.length)} % of filters dead (${dead} of ${values.length}, ≤ 0 on every probe)`;
}

export async function warnings(run, mode, step, deadAt) {
  // the logged layers and the Grad-CAM layer, which layers=[...] may leave out of them
  const layers = run.layers.includes(run.gradcam_layer) ? run.layers : [...run.layers, run.gradcam_layer];
  const [event, ...stats] = await Promise.all([getJSON("event", { run: run.run, step, mode }),
    ...layers.map((layer) => statsAt(run, mode, step, layer).catch(() => null))]);  // unreadable: no warning
  return [oneClass(run, event.predictions), ...layers.map((layer, i) => deadLayer(layer, stats[i], deadAt))].filter(Boolean);
}

export async function banner(run, mode, step, deadAt) {
  const lines = await warnings(run, mode, step, deadAt).catch(() => []);  // the view reports a failed step
  if (!lines.length) return null;
  return el("div", { class: "banner", role: "status" }, ...lines.map((text) => el("p", { text: `⚠ ${text}` })));
}
