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

export async function render({ state, store }, run, step) {
  const event = await getJSON("event", { run: run.run, step, mode: state.mode });
  const sections = [];
  for (const layer of Object.keys(run.filter_channels)) {
    const header = event.filters[layer];
    if (header.error) {  // one damaged layer: say so there, show the others
      sections.push(el("section", { class: "filter-layer" }, el("h3", { text: layer }), message("error", header.error)));
      continue;
    }
    const [, n, kh, kw, depth] = header.shape;
    const image = await loadImage("filters", { run: run.run, step, mode: state.mode, layer });
    const canvas = el("canvas", { class: "filters", dataset: { layer } });
    drawSpaced(canvas, image, header, GAP);
    const hint = el("span", { class: "hint" });
    const tileOf = (event_) => tileAt(...canvasPoint(canvas, event_), header, GAP);
    canvas.addEventListener("mousemove", (event_) => {
      const tile = tileOf(event_);
      hint.textContent = tile < 0 ? "" : `filter ${header.channels[tile]} — click for its card`;
    });
    canvas.addEventListener("click", (event_) => {
      const tile = tileOf(event_);
      if (tile >= 0) store.update({ cardlayer: layer, cardchannel: header.channels[tile] });
    });
    const what = header.view === "kernel" ? `${kh}×${kw} kernels in colour (${depth} input channels)` : `${kh}×${kw} kernels averaged over input channels`;
    sections.push(el("section", { class: "filter-layer" },
      el("h3", {}, el("span", { text: layer }), el("span", { class: "note", text: ` — ${n} filters, ${what}; each tile scaled to its own range ` }), hint),
      canvas));
  }
  return el("div", { class: "filter-grid" }, ...sections);
}

export function prefetch({ state }, run, step) {
  getJSON("event", { run: run.run, step, mode: state.mode }).catch(() => {});
  for (const layer of Object.keys(run.filter_channels)) {
    loadImage("filters", { run: run.run, step, mode: state.mode, layer }).catch(() => {});
  }
}
