// Trust view: can this run's heat maps be believed? The figures each event stores
// (tb_cnnviz/explanations/trust.py), averaged over the probes, charted over training, each with
// a sentence saying what good looks like. A view as views.js describes one.

import { getJSON, loadImage, pixels } from "./api.js";
import { lineChart } from "./chart.js";
import { el, faithfulnessMeaning, message } from "./dom.js";
import { METHOD_NAMES, methodPicker, scoredMethods } from "./gradcam_maps.js";

export const label = "Trust";

// The method whose figures are charted: state.method (shared with the Grad-CAM view) where the
// run scores it, else Grad-CAM.
function charted(run, state) {
  return scoredMethods(run).includes(state.method) ? state.method : "gradcam";
}

export function toolbar({ state, store, runs }) {
  return [methodPicker(scoredMethods(runs[0]), { ...state, method: charted(runs[0], state) }, store)];
}

// The chance levels, averaged over the probes: the share of the image the object covers (where
// a map's mass would land on it by chance), and the share within 1 pixel of it (where a peak
// placed at random scores a hit: the pointing game's tolerance).
async function objectShare(run) {
  const shares = await Promise.all(Array.from({ length: run.samples }, async (_, sample) => {
    const { data, width, height } = pixels(await loadImage("object", { run: run.run, sample }));
    const on = (x, y) => x >= 0 && y >= 0 && x < width && y < height && data[(y * width + x) * 4] >= 128;
    let inside = 0;
    let near = 0;
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        inside += on(x, y) ? 1 : 0;
        near += [-1, 0, 1].some((dy) => [-1, 0, 1].some((dx) => on(x + dx, y + dy))) ? 1 : 0;
      }
    }
    return [inside / (width * height), near / (width * height)];
  }));
  const mean = (i) => shares.reduce((sum, share) => sum + share[i], 0) / shares.length;
  return { energy: mean(0), pointing: mean(1) };
}

function computed(values) {
  return values?.some((v) => v !== null && Number.isFinite(v));
}

function ordinal(n) {
  const tens = n % 100;
  return `${n}${tens >= 11 && tens <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th"}`;
}

// When deletion and insertion are computed: every eval event, and every trust_every-th train
// event counting the first (None: eval events only).
function when(run, mode) {
  if (mode === "eval" || run.trust_every === 1) return "computed on every event";
  if (run.trust_every === null) return "computed on eval events only in this run (trust_every=None): switch to eval";
  if (run.trust_every === undefined) return "computed on some events";
  return `computed on every ${ordinal(run.trust_every)} train event from the first (trust_every=${run.trust_every}) and on every eval event`;
}

// The cascading randomisation test an eval event ran (CNNViz(sanity_check=True)): the rank
// correlation with the trained model's maps after each layer more is re-initialised, from the
// output down; null when the step has none.
async function cascadeChart(run, step) {
  const event = await getJSON("event", { run: run.run, mode: "eval", step });
  const results = event.predictions.sanity_check;
  if (!results?.length) return null;
  return lineChart({
    title: `Cascading randomisation at eval step ${step}`,
    steps: results.map((_, i) => i + 1),
    xLabel: "layers re-initialised, from the output down",
    yLabel: "rank correlation",
    yRange: [0, 1],
    series: [{ name: "rank correlation with the trained model's maps", values: results.map(([, value]) => value) }],
    caption: `Adebayo et al.'s test of Grad-CAM's maps, on a copy of the model: layers re-initialised in turn — ${results.map(([name]) => name).join(", ")}. Good: the correlation drops at once (below ~0.5 after the first layers) — a map that survives random weights shows the input, not the model.`,
  });
}

function missingChart(title, text) {
  return el("figure", { class: "chart-card missing-chart" }, el("figcaption", { text: title }), el("p", { class: "note", text }));
}

// The figures of whether a map shows what the model rests on (deletion, insertion,
// faithfulness, the sanity check), each as [the series that make it, its lineChart options,
// what stands in its place where none of them was computed].
function modelFigures(run, mode, series) {
  const curve = (kind, better) => [[`${kind}_auc`], {
    title: `${kind[0].toUpperCase()}${kind.slice(1)} AUC`,
    yLabel: "AUC of the target's probability",
    yRange: [0, 1],
    series: [{ name: `${kind} AUC`, values: series[`${kind}_auc`] }, { name: "random order (chance)", values: series[`${kind}_auc_random`], dashed: true, pair: `${kind} AUC` }],
    caption: kind === "deletion"
      ? `The target's probability as the map's most salient pixels are blurred first, area under the curve (${when(run, mode)}). Good: ${better} the dashed random order's — removing what the map points at hurts the prediction fastest.`
      : `The target's probability as the map's most salient pixels are put back into a blurred image first, area under the curve (${when(run, mode)}). Good: ${better} the dashed random order's — what the map points at is enough to bring the prediction back.`,
  }, `Not computed at any ${mode} step: ${when(run, mode)}.`];
  return [curve("deletion", "below"), curve("insertion", "above"), [["faithfulness"], {
    title: "Faithfulness",
    yLabel: "probability drop",
    series: [{ name: "faithfulness", values: series.faithfulness }],
    caption: `The ${faithfulnessMeaning(run)}. Good: high — the map covers what the prediction rests on.`,
  }, "Grad-CAM's alone: choose Grad-CAM."], [["sanity_rank_corr"], {
    title: "Sanity check (model randomisation)",
    yLabel: "rank correlation",
    yRange: [0, 1],
    series: [{ name: "rank correlation with the first event's map", values: series.sanity_rank_corr }],
    caption: "Spearman correlation of each probe's map with its map of the same class at the run's first event (the untrained model, when the run logs as training begins). Good: falling away from 1 as the model learns — a map that stays the same does not depend on what the model learned (an edge detector would pass).",
  }, "Not computed in this run."]];
}

// The figures of whether a map lands on the probes' objects (the pointing game, the energy in
// the object), as modelFigures gives them, with their chance levels (objectShare's) when known.
function objectFigures(steps, series, chance) {
  const noTruth = "Needs the probes' objects: log with CNNViz(masks=…) or CNNViz(boxes=…).";
  const chanceSeries = (name, level, text) => (chance === null ? [] : [{ name: text, values: steps.map(() => chance[level]), dashed: true, pair: name }]);
  return [[["pointing_game"], {
    title: "Pointing game",
    yLabel: "share of probes",
    yRange: [0, 1],
    series: [{ name: "pointing game", values: series.pointing_game }, ...chanceSeries("pointing game", "pointing", "share within 1 pixel of the object (chance)")],
    caption: "The share of probes whose map peaks on the object. Good: high, well above the dashed chance level (about where a peak placed at random would land).",
  }, noTruth], [["energy_in_mask"], {
    title: "Energy in the object",
    yLabel: "share of the map",
    yRange: [0, 1],
    series: [{ name: "energy in object", values: series.energy_in_mask }, ...chanceSeries("energy in object", "energy", "object's share of the image (chance)")],
    caption: "The share of the map's mass that falls on the object. Good: high, well above the dashed chance level (a map spread evenly).",
  }, noTruth]];
}

export async function render({ state }, run, step) {
  const method = charted(run, state);
  const [metrics, chance, cascade] = await Promise.all([
    getJSON("metrics", { run: run.run, mode: state.mode, method }, { fresh: true }),
    run.truth ? objectShare(run).catch(() => null) : null,
    state.mode === "eval" && step !== undefined ? cascadeChart(run, step).catch(() => null) : null,
  ]);
  const { steps, series } = metrics;
  if (!steps.length) {
    return message("error", `No trust figures of ${METHOD_NAMES[method]} in run ${run.run} (${state.mode}): it was logged before tb_cnnviz stored them, or no event of this mode has them yet.`);
  }
  const chart = ([names, options, missing]) => (names.some((name) => computed(series[name]))
    ? lineChart({ steps, marker: step, connectNulls: true, ...options }) : missingChart(options.title, missing));
  const cascadeCard = state.mode !== "eval" ? []
    : [cascade ?? missingChart("Cascading randomisation", "Not run at this eval step: log with CNNViz(sanity_check=True) to run it at every eval event.")];
  return el("div", {},
    el("p", { class: "note", text: `Can the heat maps be believed? Each figure is the mean over the ${run.samples} probes of the target class's ${METHOD_NAMES[method]}, at each ${state.mode} step that computed it (the Methods view ranks the methods at a step). Hover a chart for values.` }),
    el("div", { class: "charts trust" }, ...modelFigures(run, state.mode, series).map(chart), ...cascadeCard,
      ...objectFigures(steps, series, chance).map(chart)));
}
