// Grad-CAM view: each probe with its heat map drawn over it, the prediction and the label, by one
// of the methods the run logs (state.method). A view as views.js describes one; also drawHeat,
// which the Methods view draws its maps with.

import { getJSON, loadImage, part, pixels, url } from "./api.js";
import { COLORMAPS, greyLevels } from "./colormap.js";
import { className, el, faithfulnessMeaning, fmt, labelled, select } from "./dom.js";
import { classColour, drawMask } from "./masks.js";
import { drawLevels } from "./mosaic.js";
import { drawOutline } from "./outline.js";
import { CLASS_MAP_METHODS, METHOD_NAMES, classMapPosition, classPicker, hasClasses, loggedMethods, maps, methodHeader,
  methodPicker, sharedScale } from "./gradcam_maps.js";
import { levelTable, negligibleRule, relevel, short } from "./scale.js";

export const label = "Grad-CAM";

const SCALES = { map: "per map", shared: "shared over probes and steps" };

export function toolbar({ state, store, content, runs }) {
  const run = runs[0];
  const opacity = el("input", { type: "range", min: "0", max: "1", step: "0.05", value: state.opacity, "aria-label": "opacity" });
  opacity.addEventListener("input", () => {
    content.style.setProperty("--heat-opacity", opacity.value);
    store.update({ opacity: opacity.value });
  });
  const outline = run.truth ? el("input", { type: "checkbox", name: "outline", checked: state.outline === "1" }) : null;
  outline?.addEventListener("change", () => store.update({ outline: outline.checked ? "1" : "" }));
  return [
    methodPicker(loggedMethods(run), state, store),
    CLASS_MAP_METHODS.includes(state.method) ? classPicker(run, state, store) : null,
    labelled("Colormap", select(Object.keys(COLORMAPS), state.cmap, (cmap) => store.update({ cmap }), { name: "cmap" })),
    labelled("Scale", select(Object.entries(SCALES), state.scale, (scale) => store.update({ scale }), { name: "scale" })),
    labelled("Opacity", opacity),
    outline ? labelled("Outline object", outline) : null,
  ].filter(Boolean);
}

function classList(run, indices) {
  return indices.length ? indices.map((index) => className(run, index)).join(", ") : "none";
}

// What a probe's caption says: its prediction, its label(s) and whether they agree. A
// multi-label head predicts the set of classes over 0.5 and is labelled with a set.
function verdict(run, predictions, sample) {
  const probability = predictions.probability[sample];  // null: the model's output was NaN
  const label = predictions.label ? predictions.label[sample] : null;
  const predicted = predictions.predicted[sample];
  const set = predictions.predicted_set?.[sample];
  const truth = label === null ? null : set ? `labels: ${classList(run, label)}` : `label: ${className(run, label)}`;
  if (probability === null) return { text: "no prediction: the output is NaN", truth, wrong: false, judged: false };
  const wrong = label !== null && (set ? set.join() !== label.join() : label !== predicted);
  return { text: set ? `predicted: ${classList(run, set)} (${highest(run, predictions, sample)})`
    : `${className(run, predicted)} ${fmt(probability * 100, 1)}%`, truth, wrong, judged: label !== null };
}

// A multi-label probe's most probable class; a segmentation probe's largest class other than
// the background, with its share of the pixels and its mean probability over them.
function highest(run, predictions, sample) {
  const predicted = predictions.predicted[sample];
  const probability = `${fmt(predictions.probability[sample] * 100, 1)}%`;
  if (!predictions.pixel_share) return `top ${className(run, predicted)} ${probability}`;
  const share = predictions.pixel_share[sample][predicted];
  return share > 0 ? `largest ${className(run, predicted)}: ${fmt(share * 100, 1)}% of pixels at ${probability}`
    : `no class but ${className(run, run.background_class ?? 0)}`;
}

function nonfinite(event, method, map, sample) {
  if (!map.choice) return methodHeader(event, method).nonfinite?.[sample]?.[0] ?? 0;
  return event.class_maps.nonfinite?.[sample]?.[classMapPosition(event.class_maps, method, sample, map.choice.slot)] ?? 0;
}

function heatParams(state, run, step) {
  return { run: run.run, step, mode: state.mode, method: state.method };
}

function imageParams(state, run, step, map, sample) {
  return { ...heatParams(state, run, step), sample, class: map.choice ? map.choice.index : undefined };
}

// The caption lines about the map itself: whose class it is, why it is missing or flat.
function mapLines(run, event, state, map, sample, flat) {
  const { predictions } = event;
  const lines = [];
  const target = predictions.target[sample];
  if (map.choice?.missing !== undefined) {
    if (!event.class_maps) return [el("div", { class: "missing", text: "no maps of other classes at this step (logged before tb_cnnviz stored them)" })];
    if (map.choice.missing === null) return [el("div", { class: "missing", text: state.cls === "true" ? "no true class: the probe has no label" : "no other class" })];
    return [el("div", { class: "missing", text: `not stored: no map of ${className(run, map.choice.missing)} for this probe (stored: ${map.choice.stored.map((c) => className(run, c)).join(", ")})` })];
  }
  if (map.choice) {
    const probability = map.choice.probability === null ? "" : ` ${fmt(map.choice.probability * 100, 1)}%`;
    lines.push(el("div", { class: "label map-class", text: `map for: ${className(run, map.choice.index)}${probability}${map.choice.slot === 0 ? " (target)" : ""}` }));
  } else if (target !== predictions.predicted[sample]) {
    lines.push(el("div", { class: "label", text: `map for: ${className(run, target)}` }));
  }
  const zeroTarget = !map.choice && predictions.target_pixels?.[sample] === 0;
  if (zeroTarget) lines.push(el("div", { class: "prediction wrong", text: `no pixel is predicted as ${className(run, target)}: its map is zero` }));
  if (flat && !zeroTarget) lines.push(el("div", { class: "flat", text: `flat: ${flat} — drawn without stretching` }));
  const bad = nonfinite(event, state.method, map, sample);
  if (bad) lines.push(el("div", { class: "prediction wrong", text: `⚠ ${bad} NaN/inf values (shown as the minimum)` }));
  return lines;
}

function scaleNote(scale) {
  if (!scale) return "each map scaled to its own range (a map whose range is negligible is drawn flat)";
  if (scale.high === undefined) return "on a shared scale: no map of this class is stored at any step";
  const over = scale.steps < scale.of ? `${scale.steps} of ${scale.of} steps (the others could not be read)` : `${scale.of} step${scale.of === 1 ? "" : "s"}`;
  return `on one scale shared by every probe and step: ${short(scale.low)} … ${short(scale.high)} (the largest value over ${scale.maps} maps at ${over})`;
}

// How many probes a step's cards show: those it probed that the run's probe images (its latest
// run header) still hold; and what a step that probed another number says about it (a new
// CNNViz with other samples was run into the logdir since).
function probeCount(run, event, step) {
  const probed = event.predictions.predicted.length;
  const count = Math.min(probed, run.samples);
  const note = probed === run.samples ? null : el("p", { class: "note probe-count", text: `Step ${step} probed ${probed} images; the run's probe images are now ${run.samples} (its latest callback's): showing the first ${count}.` });
  return { count, note };
}

export async function render({ state, store }, run, step) {
  const event = await getJSON("event", { run: run.run, step, mode: state.mode });
  const predictions = event.predictions;
  const probes = probeCount(run, event, step);
  const choice = hasClasses(run) && CLASS_MAP_METHODS.includes(state.method) ? state.cls : "";
  const shown = maps(event, state.method, choice);
  const header = methodHeader(event, state.method);
  const drawn = shown.filter((map) => map.lo !== undefined);
  const rule = negligibleRule(drawn.map((map) => map.lo), drawn.map((map) => map.hi));
  const scale = state.scale === "shared" ? await sharedScale(run, state.mode, state.method, choice) : null;
  const lut = COLORMAPS[state.cmap] || COLORMAPS.jet;
  const outline = state.outline === "1" && run.truth;
  const cards = el("div", { class: "cards" });
  const draws = [];
  for (let sample = 0; sample < probes.count; sample += 1) {
    const map = shown[sample];
    const canvas = el("canvas", { class: "heat", dataset: { sample: String(sample) } });
    const probe = el("img", { class: "probe", alt: `probe ${sample}`, src: url("probe", { run: run.run, sample }) });
    const border = outline ? el("canvas", { class: "outline", dataset: { sample: String(sample) } }) : null;
    const flat = map.lo === undefined ? "" : rule.test(map.lo, map.hi);
    const { text, truth, wrong, judged } = verdict(run, predictions, sample);
    const caption = el("figcaption", {},
      el("div", { class: wrong ? "prediction wrong" : "prediction", title: wrong ? "wrong prediction" : "" },
        el("span", { text: wrong ? "✗ " : judged ? "✓ " : "" }),
        el("span", { text })),
      truth ? el("div", { class: "label", text: truth }) : null,
      ...mapLines(run, event, state, map, sample, flat));
    const mask = event.masks ? el("canvas", { class: "mask", dataset: { sample: String(sample) } }) : null;
    const card = el("figure", { class: `card${String(sample) === state.sample ? " selected" : ""}`, onclick: () => store.update({ sample }) },
      el("div", { class: "stack" }, probe, canvas, border), mask ? el("div", { class: "stack" }, mask) : null,
      mask ? legend(run, predictions.predicted_set[sample]) : null, caption);
    cards.append(card);
    if (map.lo !== undefined) {
      // shared: every map on one range; per map: its own range, or flat if that is negligible
      const table = scale ? levelTable(map.lo, map.hi, scale.low, scale.high) : flat ? new Uint8Array(256) : null;
      draws.push(drawHeat(canvas, imageParams(state, run, step, map, sample), lut, table));
    }
    if (border) draws.push(drawOutline(border, { run: run.run, sample }));
    if (mask) draws.push(drawMask(mask, { run: run.run, step, mode: state.mode, sample }, part(event.masks)));
  }
  await Promise.all(draws);
  const where = header.layer ? `at ${header.layer}` : "on the input's pixels";
  return el("div", {}, el("p", { class: "note", text: `${METHOD_NAMES[state.method]} ${where}, ${scaleNote(scale)}. Faithfulness (${faithfulnessMeaning(run)}): ${fmt(event.faithfulness)}` }), probes.note, cards);
}

// The classes of a predicted mask, each in its colour.
function legend(run, classes) {
  return el("div", { class: "legend" }, ...classes.map((index) =>
    el("span", { class: "swatch", style: `--swatch:${classColour(index)}`, text: className(run, index) })));
}

// Draws a stored map's levels in colour; `table` (256 entries) maps them to the levels of
// another scale first.
export async function drawHeat(canvas, params, lut, table) {
  const source = pixels(await loadImage("gradcam", params));
  const levels = greyLevels(source);
  drawLevels(canvas, source, table ? relevel(levels, table) : levels, lut);
}

export function prefetch({ state }, run, step) {
  const choice = hasClasses(run) && CLASS_MAP_METHODS.includes(state.method) ? state.cls : "";
  getJSON("event", { run: run.run, step, mode: state.mode }).then((answer) => {
    const { count } = probeCount(run, answer, step);
    maps(answer, state.method, choice).slice(0, count).forEach((map, sample) => {
      if (map.lo !== undefined) loadImage("gradcam", imageParams(state, run, step, map, sample)).catch(() => {});
    });
  }).catch(() => {});
}
