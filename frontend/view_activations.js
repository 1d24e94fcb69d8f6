// Activations view: the feature maps of one layer for every probe; hover names the channel
// and its value range, click opens that channel's filter card. A view as views.js describes one.

import { getJSON, loadImage, part, pixels } from "./api.js";
import { canvasPoint, el, extent, fmt, labelled, select } from "./dom.js";
import { greyLevels } from "./colormap.js";
import { drawLevels, flattened, gridShape, rescaled, tileAt, tileOrigin } from "./mosaic.js";
import { negligibleRule, short } from "./scale.js";

export const label = "Activations";

function layerOf(state, run) {
  return run.layers.includes(state.layer) ? state.layer : run.layers[0];
}

export function toolbar({ state, store, runs }) {
  const run = runs[0];
  return [
    labelled("Layer", select(run.layers, layerOf(state, run), (layer) => store.update({ layer, channel: "" }), { name: "layer" })),
    labelled("Normalise", select([["map", "each map"], ["layer", "whole layer"]], state.norm, (norm) => store.update({ norm }), { name: "norm" })),
  ];
}

function params(state, run, step, layer) {
  return { run: run.run, step, mode: state.mode, layer };
}

// A layer whose maps are larger than max_layer_pixels is stored area-downsampled (docs/format.md).
function downsampling(run, layer) {
  const factor = run.downsampled?.[layer];
  const [height, width] = run.conv_layers[layer].output_shape;
  return factor ? ` (its ${width}×${height} maps averaged over ${factor}×${factor} blocks)` : "";
}

export async function render({ state, store }, run, step) {
  const layer = layerOf(state, run);
  const event = await getJSON("event", { run: run.run, step, mode: state.mode });
  const header = part(event.activations[layer]);
  const [, n, h, w] = header.shape;
  const low = state.norm === "layer" ? extent(header.lo.flat())[0] : undefined;
  const high = state.norm === "layer" ? extent(header.hi.flat())[1] : undefined;
  const tooltip = el("div", { class: "tooltip", hidden: true });
  const rows = el("div", { class: "mosaics" });
  const highlighted = state.channel === "" ? -1 : header.channels.indexOf(Number(state.channel));
  // A map whose range is negligible beside the layer's other maps at this step is drawn flat
  // on its own range (never stretched); on the layer's range it is drawn as it is.
  const rule = negligibleRule(header.lo.flat(), header.hi.flat());
  const why = header.hi.map((his, sample) => his.map((hi, tile) => (hi > header.lo[sample][tile] ? rule.test(header.lo[sample][tile], hi) : "")));
  const jobs = [];
  // the probes of this step: a run given other samples since holds another number at other steps
  for (let sample = 0; sample < header.shape[0]; sample += 1) {
    const canvas = el("canvas", { class: "mosaic", dataset: { sample: String(sample) } });
    const wrap = el("div", { class: "mosaic-wrap" }, canvas);
    const describe = (event_) => tileAt(...canvasPoint(canvas, event_), header);
    canvas.addEventListener("mousemove", (event_) => {
      const tile = describe(event_);
      tooltip.hidden = tile < 0;
      if (tile < 0) return;
      const bad = header.nonfinite?.[sample]?.[tile] ?? 0;
      const flat = why[sample][tile] ? ` · flat: ${why[sample][tile]}` : "";
      tooltip.textContent = `probe ${sample} · channel ${header.channels[tile]} · values ${fmt(header.lo[sample][tile])} … ${fmt(header.hi[sample][tile])}${flat}${bad ? ` · ⚠ ${bad} NaN/inf values` : ""}`;
    });
    canvas.addEventListener("mouseleave", () => { tooltip.hidden = true; });
    canvas.addEventListener("click", (event_) => {
      const tile = describe(event_);
      if (tile >= 0) store.update({ cardlayer: layer, cardchannel: header.channels[tile] });
    });
    if (highlighted >= 0) {
      const [x0, y0] = tileOrigin(highlighted, header);
      const [rowsCount, cols] = gridShape(n);
      wrap.append(el("div", { class: "highlight", style: `left:${(100 * x0) / (cols * w)}%;top:${(100 * y0) / (rowsCount * h)}%;width:${100 / cols}%;height:${100 / rowsCount}%` }));
    }
    const flatCount = why[sample].filter(Boolean).length;
    rows.append(el("figure", { class: "mosaic-card" }, wrap, el("figcaption", {},
      el("span", { text: `probe ${sample}` }),
      flatCount ? el("div", { class: "flat", text: `${flatCount} map${flatCount > 1 ? "s" : ""} flat: range negligible (max below ${short(rule.threshold)}), drawn without stretching` }) : null)));
    jobs.push(loadImage("activations", { ...params(state, run, step, layer), sample }).then((image) => {
      const source = pixels(image);
      const levels = greyLevels(source);
      drawLevels(canvas, source, low === undefined ? flattened(levels, source.width, header, why[sample].map(Boolean))
        : rescaled(levels, source.width, header, sample, low, high));
    }));
  }
  await Promise.all(jobs);
  const missing = state.channel !== "" && highlighted < 0
    ? el("p", { class: "message error", text: `Filter ${state.channel} of ${layer} has no logged feature maps (logged: ${header.channels.join(", ")}). Log it with CNNViz(max_channels="all") or a larger max_channels.` })
    : null;
  return el("div", {}, missing,
    el("p", { class: "note", text: `${layer}: ${n} of its channels (${header.channels.join(", ")}), ${w}×${h} each${downsampling(run, layer)}, colour = ${state.norm === "layer" ? "value on the layer's shared range" : "value on each map's own range"}. Hover for values, click for the filter's card.` }),
    tooltip, rows);
}

export function prefetch({ state }, run, step) {
  const layer = layerOf(state, run);
  getJSON("event", { run: run.run, step, mode: state.mode }).then((event) => {
    const [count] = part(event.activations[layer]).shape;  // this step's probes
    for (let sample = 0; sample < count; sample += 1) {
      loadImage("activations", { ...params(state, run, step, layer), sample }).catch(() => {});
    }
  }).catch(() => {});
}
