// Filters view: the first layer's kernels as colour tiles, deeper layers' kernels averaged
// over their input channels, at the selected step; click a kernel for its filter card. A view
// as views.js describes one.

import { getJSON, loadImage } from "./api.js";
import { canvasPoint, el, message } from "./dom.js";
import { drawSpaced, tileAt } from "./mosaic.js";

const GAP = 1;

export const label = "Filters";

export function toolbar() {
  return [];
}

// The layers whose kernels a step shows: the run's (its latest run header's), then any that
// only this step logged (a layer its model had then that the run's latest model lacks).
function layersAt(run, event) {
  const latest = Object.keys(run.filter_channels);
  return [...latest, ...Object.keys(event.filters).filter((layer) => !latest.includes(layer))];
}

async function layerSection({ state, store }, run, step, layer, header) {
  if (header.error) {  // one damaged (or, at this step, missing) layer: say so there, show the others
    return el("section", { class: "filter-layer" }, el("h3", { text: layer }), message("error", header.error));
  }
  const [, n, kh, kw, depth] = header.shape;
  const image = await loadImage("filters", { run: run.run, step, mode: state.mode, layer });
  const canvas = el("canvas", { class: "filters", dataset: { layer } });
  drawSpaced(canvas, image, header, GAP);
  const hint = el("span", { class: "hint" });
  const latest = Object.hasOwn(run.filter_channels, layer);  // else no card: the run's model has no such layer now
  const tileOf = (event_) => tileAt(...canvasPoint(canvas, event_), header, GAP);
  canvas.addEventListener("mousemove", (event_) => {
    const tile = tileOf(event_);
    hint.textContent = tile < 0 ? "" : `filter ${header.channels[tile]}${latest ? " — click for its card" : ""}`;
  });
  canvas.addEventListener("click", (event_) => {
    const tile = tileOf(event_);
    if (tile >= 0 && latest) store.update({ cardlayer: layer, cardchannel: header.channels[tile] });
  });
  const what = header.view === "kernel" ? `${kh}×${kw} kernels in colour (${depth} input channels)` : `${kh}×${kw} kernels averaged over input channels`;
  const only = latest ? "" : `; a layer of this step's model that the run's latest model lacks`;
  return el("section", { class: "filter-layer" },
    el("h3", {}, el("span", { text: layer }), el("span", { class: "note", text: ` — ${n} filters, ${what}; each tile scaled to its own range${only} ` }), hint),
    canvas);
}

export async function render(ctx, run, step) {
  const event = await getJSON("event", { run: run.run, step, mode: ctx.state.mode });
  const sections = [];
  for (const layer of layersAt(run, event)) sections.push(await layerSection(ctx, run, step, layer, event.filters[layer]));
  return el("div", { class: "filter-grid" }, ...sections);
}

export function prefetch({ state }, run, step) {
  getJSON("event", { run: run.run, step, mode: state.mode }).then((event) => {
    for (const layer of layersAt(run, event).filter((name) => !event.filters[name].error)) {
      loadImage("filters", { run: run.run, step, mode: state.mode, layer }).catch(() => {});
    }
  }).catch(() => {});
}
