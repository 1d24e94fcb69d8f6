// Grad-CAM view: each probe with its heat map drawn over it, the prediction and the label.

import { getJSON, loadImage, part, pixels, url } from "./api.js";
import { COLORMAPS, greyLevels } from "./colormap.js";
import { el, faithfulnessMeaning, fmt, labelled, select } from "./dom.js";
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
    const truth = predictions.label ? predictions.label[sample] : null;
    const probability = predictions.probability[sample];  // null: the model's output was NaN
    const judged = truth !== null && probability !== null;
    const wrong = judged && truth !== predicted;
    const caption = el("figcaption", {},
      el("div", { class: wrong ? "prediction wrong" : "prediction", title: wrong ? "wrong prediction" : "" },
        el("span", { text: wrong ? "✗ " : judged ? "✓ " : "" }),
        el("span", { text: probability === null ? "no prediction: the output is NaN"
          : `${className(run, predicted)} ${fmt(probability * 100, 1)}%` })),
      truth !== null ? el("div", { class: "label", text: `label: ${className(run, truth)}` }) : null,
      predictions.target[sample] !== predicted
        ? el("div", { class: "label", text: `map for: ${className(run, predictions.target[sample])}` }) : null,
      nonfinite(event, state, sample) ? el("div", { class: "prediction wrong", text: `⚠ ${nonfinite(event, state, sample)} NaN/inf values (shown as the minimum)` }) : null);
    const card = el("figure", { class: `card${String(sample) === state.sample ? " selected" : ""}`, onclick: () => store.update({ sample }) },
      el("div", { class: "stack" }, probe, canvas), caption);
    cards.append(card);
    draws.push(drawHeat(canvas, { ...heatParams(state, run, step), sample }, COLORMAPS[state.cmap] || COLORMAPS.jet));
  }
  await Promise.all(draws);
  return el("div", {}, el("p", { class: "note", text: `${METHODS[state.method]} at ${event[state.method].layer}, each map scaled to its own range. Faithfulness (${faithfulnessMeaning(run)}): ${fmt(event.faithfulness)}` }), cards);
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
