// Grad-CAM view: each probe with its heat map drawn over it, the prediction and the label.

import { getJSON, loadImage, part, pixels, url } from "./api.js";
import { COLORMAPS, greyLevels } from "./colormap.js";
import { el, faithfulnessMeaning, fmt, labelled, select } from "./dom.js";
import { classColour, drawMask } from "./masks.js";
import { drawLevels } from "./mosaic.js";

export const label = "Grad-CAM";
// state.method names the event's summary and the `method` of the gradcam routes
export const METHODS = { gradcam: "Grad-CAM", gradcam_pp: "Grad-CAM++" };

export function toolbar({ state, store, content }) {
  const opacity = el("input", { type: "range", min: "0", max: "1", step: "0.05", value: state.opacity, "aria-label": "opacity" });
  opacity.addEventListener("input", () => {
    content.style.setProperty("--heat-opacity", opacity.value);
    store.update({ opacity: opacity.value });
  });
  return [
    labelled("Method", select(Object.entries(METHODS), state.method, (method) => store.update({ method }), { name: "method" })),
    labelled("Colormap", select(Object.keys(COLORMAPS), state.cmap, (cmap) => store.update({ cmap }), { name: "cmap" })),
    labelled("Opacity", opacity),
  ];
}

function className(run, index) {
  return run.class_names?.[index] ?? `class ${index}`;
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

function nonfinite(event, state, sample) {
  return event[state.method].nonfinite?.[sample]?.[0] ?? 0;
}

function heatParams(state, run, step) {
  return { run: run.run, step, mode: state.mode, method: state.method };
}

export async function render({ state, store }, run, step) {
  const event = await getJSON("event", { run: run.run, step, mode: state.mode });
  const predictions = event.predictions;
  part(event[state.method]);
  const cards = el("div", { class: "cards" });
  const draws = [];
  for (let sample = 0; sample < run.samples; sample += 1) {
    const canvas = el("canvas", { class: "heat", dataset: { sample: String(sample) } });
    const probe = el("img", { class: "probe", alt: `probe ${sample}`, src: url("probe", { run: run.run, sample }) });
    const predicted = predictions.predicted[sample];
    const { text, truth, wrong, judged } = verdict(run, predictions, sample);
    const caption = el("figcaption", {},
      el("div", { class: wrong ? "prediction wrong" : "prediction", title: wrong ? "wrong prediction" : "" },
        el("span", { text: wrong ? "✗ " : judged ? "✓ " : "" }),
        el("span", { text })),
      truth ? el("div", { class: "label", text: truth }) : null,
      predictions.target[sample] !== predicted
        ? el("div", { class: "label", text: `map for: ${className(run, predictions.target[sample])}` }) : null,
      predictions.target_pixels?.[sample] === 0
        ? el("div", { class: "prediction wrong", text: `no pixel is predicted as ${className(run, predictions.target[sample])}: its map is zero` }) : null,
      nonfinite(event, state, sample) ? el("div", { class: "prediction wrong", text: `⚠ ${nonfinite(event, state, sample)} NaN/inf values (shown as the minimum)` }) : null);
    const mask = event.masks ? el("canvas", { class: "mask", dataset: { sample: String(sample) } }) : null;
    const card = el("figure", { class: `card${String(sample) === state.sample ? " selected" : ""}`, onclick: () => store.update({ sample }) },
      el("div", { class: "stack" }, probe, canvas), mask ? el("div", { class: "stack" }, mask) : null,
      mask ? legend(run, predictions.predicted_set[sample]) : null, caption);
    cards.append(card);
    draws.push(drawHeat(canvas, { ...heatParams(state, run, step), sample }, COLORMAPS[state.cmap] || COLORMAPS.jet));
    if (mask) draws.push(drawMask(mask, { run: run.run, step, mode: state.mode, sample }, part(event.masks)));
  }
  await Promise.all(draws);
  return el("div", {}, el("p", { class: "note", text: `${METHODS[state.method]} at ${event[state.method].layer}, each map scaled to its own range. Faithfulness (${faithfulnessMeaning(run)}): ${fmt(event.faithfulness)}` }), cards);
}

// The classes of a predicted mask, each in its colour.
function legend(run, classes) {
  return el("div", { class: "legend" }, ...classes.map((index) =>
    el("span", { class: "swatch", style: `--swatch:${classColour(index)}`, text: className(run, index) })));
}

async function drawHeat(canvas, params, lut) {
  const image = await loadImage("gradcam", params);
  const source = pixels(image);
  drawLevels(canvas, source, greyLevels(source), lut);
}

export function prefetch({ state }, run, step) {
  getJSON("event", { run: run.run, step, mode: state.mode }).catch(() => {});
  for (let sample = 0; sample < run.samples; sample += 1) {
    loadImage("gradcam", { ...heatParams(state, run, step), sample }).catch(() => {});
  }
}
