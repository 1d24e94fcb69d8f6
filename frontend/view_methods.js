// Methods view: which explanation method to believe for this model, now. At the selected step,
// each probe's maps side by side, one column per method the run logs (each map on its own
// range, a negligible one drawn flat, as in the Grad-CAM view), and a ranking table: one row per
// method, one column per trust figure at the step with its chance level where it has one, the
// best of each column marked, a sparkline over training, and sentences saying which method the
// figures favour and by how much. A view as views.js describes one.

import { getJSON, overSteps, url } from "./api.js";
import { sparkPath, sparkX, sparkline } from "./chart.js";
import { COLORMAPS } from "./colormap.js";
import { el, fmt, labelled, select } from "./dom.js";
import { METHOD_NAMES, loggedMethods, methodHeader, scoredMethods } from "./gradcam_maps.js";
import { negligibleRule } from "./scale.js";
import { drawHeat } from "./view_gradcam.js";

export const label = "Methods";

// The figures ranked: [series, column title, what it means, which end is better, its chance series].
const FIGURES = [
  ["deletion_auc", "deletion AUC", "the target's probability as the map's most salient pixels are blurred first, area under the curve: lower is better", "low", "deletion_auc_random"],
  ["insertion_auc", "insertion AUC", "the target's probability as the map's most salient pixels are put back into a blurred image first, area under the curve: higher is better", "high", "insertion_auc_random"],
  ["pointing_game", "pointing game", "share of probes whose map peaks on the object: higher is better", "high", null],
  ["energy_in_mask", "energy in object", "share of the map's mass on the object: higher is better", "high", null],
  ["sanity_rank_corr", "rank corr. with first maps", "Spearman correlation with the method's maps at the run's first event that logged it: lower means the map depends more on what the model has learned since", "low", null],
];

export function toolbar({ state, store }) {
  return [labelled("Colormap", select(Object.keys(COLORMAPS), state.cmap, (cmap) => store.update({ cmap }), { name: "cmap" }))];
}

function methodTitle(method, header) {
  const where = !header || header.error ? "" : header.layer ? ` at ${header.layer}` : " on the input's pixels";
  return el("th", { title: `${METHOD_NAMES[method]}${where}` }, el("div", { text: METHOD_NAMES[method] }),
    method === "eigencam" ? el("div", { class: "note", text: "the same map for every class" }) : null);
}

// A step's header of a method's maps: null where the step did not log it, { error } where damaged.
function headerOf(event, method) {
  try {
    return methodHeader(event, method);
  } catch (error) {
    return { error: error.message };
  }
}

// One probe's map by one method, on its own range (flat where negligible among the method's maps).
function mapCell(params, header, rule, lut, draws) {
  if (!header) return el("td", { class: "missing", text: "not computed at this step" });
  if (header.error) return el("td", { class: "missing error", text: header.error });
  const { sample } = params;
  const flat = rule.test(header.lo[sample][0], header.hi[sample][0]);
  const canvas = el("canvas", { class: "heat", dataset: { sample: String(sample), method: params.method } });
  draws.push(drawHeat(canvas, params, lut, flat ? new Uint8Array(256) : null));
  return el("td", {}, el("div", { class: "stack thumb" },
    el("img", { class: "probe", alt: `probe ${sample}`, src: url("probe", { run: params.run, sample }) }), canvas),
  flat ? el("div", { class: "flat", text: "flat" }) : null);
}

// Each probe's maps, one column per method; the methods a step did not compute say so.
async function mapGrid(state, run, step, event, methods) {
  const lut = COLORMAPS[state.cmap] || COLORMAPS.jet;
  const count = Math.min(event.predictions.predicted.length, run.samples);
  const headers = methods.map((method) => headerOf(event, method));
  const rules = headers.map((header) => header && !header.error && negligibleRule(header.lo.map((lo) => lo[0]), header.hi.map((hi) => hi[0])));
  const draws = [];
  const rows = Array.from({ length: count }, (_, sample) => el("tr", {}, el("th", { text: String(sample) }),
    ...methods.map((method, i) => mapCell({ run: run.run, step, mode: state.mode, method, sample }, headers[i], rules[i], lut, draws))));
  await Promise.all(draws);
  return el("div", { class: "methods-maps" }, el("table", { class: "methods-maps" },
    el("thead", {}, el("tr", {}, el("th", { text: "probe" }), ...methods.map((method, i) => methodTitle(method, headers[i])))),
    el("tbody", {}, ...rows)));
}

// A method's figure at the step: null where it was not computed.
function valueAt(answer, name, step) {
  const index = answer ? answer.steps.indexOf(step) : -1;
  const value = index < 0 ? null : answer.series[name]?.[index];
  return value === null || value === undefined || !Number.isFinite(value) ? null : value;
}

// The methods' values of a figure at the step, best first: [[method, value], ...].
function ranked(methods, answers, [name, , , better], step) {
  const found = methods.map((method, i) => [method, valueAt(answers[i], name, step)]).filter(([, value]) => value !== null);
  return found.sort((a, b) => (better === "low" ? a[1] - b[1] : b[1] - a[1]));
}

// "At step 752, HiResCAM's deletion AUC 0.21 is the lowest, Grad-CAM's 0.27; all are below
// their random order's 0.70." for deletion and insertion, where the step computed them: the
// methods tied for the best named together, beside them Grad-CAM (or the next best).
function verdict(figure, order, chance, step) {
  const [, title, , better] = figure;
  if (!order.length) return null;
  const value = order[0][1];
  const leaders = order.filter(([, v]) => fmt(v) === fmt(value)).map(([method]) => possessive(method));
  const rest = order.filter(([, v]) => fmt(v) !== fmt(value));
  const other = rest.find(([method]) => method === "gradcam") ?? rest[0];
  const beside = other ? `, ${possessive(other[0])} ${fmt(other[1])}` : "";
  const side = better === "low" ? "below" : "above";
  const beat = chance === null ? null : order.filter(([, v]) => (better === "low" ? v < chance : v > chance)).length;
  const share = beat === null ? "" : beat === order.length ? `; ${order.length === 1 ? "it is" : "all are"} ${side}`
    : beat === 0 ? `; none is ${side}` : `; ${beat} of ${order.length} are ${side}`;
  const named = leaders.length > 1 ? `${leaders.slice(0, -1).join(", ")} and ${leaders.at(-1)}` : leaders[0];
  return `At step ${step}, ${named} ${title} ${fmt(value)} is the ${better === "low" ? "lowest" : "highest"}${beside}${share}${chance === null ? "" : ` their random order's ${fmt(chance)}`}.`;
}

function possessive(method) {
  const name = METHOD_NAMES[method];
  return name.endsWith("s") ? `${name}'` : `${name}'s`;
}

// The methods marked best of a figure: those whose value shows as the best one, none where every
// method's does (nothing is ranked: e.g. the rank correlations of a run's first event, all 1).
function bestOf(order) {
  const best = order.filter(([, value]) => fmt(value) === fmt(order[0]?.[1])).map(([method]) => method);
  return best.length === order.length && order.length > 1 ? [] : best;
}

function figureCell(answer, name, step, best) {
  const value = valueAt(answer, name, step);
  const steps = answer?.steps ?? [];
  const mark = value !== null && best;
  return el("td", { class: mark ? "value best" : "value", dataset: { figure: name } },
    el("span", { class: "number", text: value === null ? "—" : `${fmt(value)}${mark ? " ★" : ""}` }),
    steps.length ? sparkline(sparkPath(steps, answer.series[name], true), sparkX(steps)(step)) : null);
}

// One row per method, one column per figure some method has in this run, with its chance level.
async function ranking(state, run, step, methods) {
  // asked again only when the run has logged other steps: moving through the steps costs no request
  const answers = await Promise.all(methods.map((method) => overSteps("metrics", { run: run.run, mode: state.mode, method },
    run.steps[state.mode]).catch(() => null)));
  const figures = FIGURES.filter(([name]) => answers.some((answer) => answer?.series[name]?.some((v) => v !== null)));
  const orders = figures.map((figure) => ranked(methods, answers, figure, step));
  const chances = figures.map(([, , , , chance]) => (chance ? answers.map((answer) => valueAt(answer, chance, step)).find((v) => v !== null) ?? null : null));
  const head = el("tr", {}, el("th", { text: "method" }), ...figures.map(([, title, meaning], i) =>
    el("th", { title: meaning, text: chances[i] === null ? title : `${title} (chance ${fmt(chances[i])})` })));
  const rows = methods.map((method, m) => el("tr", { dataset: { method } }, el("td", { class: "layer-name", text: METHOD_NAMES[method] }),
    ...figures.map(([name], i) => figureCell(answers[m], name, step, bestOf(orders[i]).includes(method)))));
  const sentences = figures.map((figure, i) => (figure[0] === "deletion_auc" || figure[0] === "insertion_auc"
    ? verdict(figure, orders[i], chances[i], step) : null)).filter(Boolean);
  const curves = figures.some(([name]) => name === "deletion_auc") && !orders[0]?.length;
  return el("div", { class: "methods-ranking" },
    ...sentences.map((text) => el("p", { class: "verdict", text })),
    curves ? el("p", { class: "note", text: `Deletion and insertion were not computed at step ${step}: they run on eval events and every trust_every-th train event.` }) : null,
    el("table", { class: "layers ranking" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

export async function render({ state }, run, step) {
  const methods = loggedMethods(run);
  const event = await getJSON("event", { run: run.run, step, mode: state.mode });
  const [table, grid] = await Promise.all([ranking(state, run, step, scoredMethods(run)),
    mapGrid(state, run, step, event, methods)]);
  return el("div", { class: "methods-view" },
    el("p", { class: "note", text: `${methods.length} methods at ${state.mode} step ${step}: the maps of each probe's target class, each map on its own range; the figures are means over the probes (★ the best of each column, unmarked where all are equal; hover a column's title for what it means). Faithfulness is Grad-CAM's alone (Trust view).` }),
    table, grid);
}
