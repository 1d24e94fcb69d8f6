// The filter card: one panel about one filter of a conv layer at the selected step: its kernel,
// the image patches that excite it most, its feature visualisation and its five statistics over
// training. Any view opens it by setting cardlayer and cardchannel in the URL state (a kernel
// tile, a feature map, an Evolution cell); index.js has normalised them to a conv layer of the
// run and one of its filters. Layer and run names are untrusted: text only.

import { ApiError, errorText, getJSON, loadImage, overSteps, part, url } from "./api.js";
import { lineChart } from "./chart.js";
import { el, fmt } from "./dom.js";
import { DrawOrder } from "./schedule.js";
import { nearest } from "./state.js";

const STATS = [  // [name in filter_stats, chart title, y label, least y range]
  ["norm", "L2 norm of the kernel", "norm"],
  ["cos_to_first", "cosine distance to its first logged kernel", "distance"],
  ["cos_to_prev", "cosine distance to its kernel at the previous event", "distance"],
  ["mean_activation", "mean activation on the probes", "activation"],
  ["dead_fraction", "dead fraction: share of probes it is ≤ 0 on", "share of probes", [0, 1]],
];

// A key of a run header's map from layer paths: layer names are untrusted ("__proto__").
function own(object, key) {
  return object && Object.hasOwn(object, key) ? object[key] : undefined;
}

function note(text, ...extra) {
  return el("p", { class: "note" }, el("span", { text }), ...extra);
}

function drawn(image, className, [sx, sy, w, h] = [0, 0, image.naturalWidth, image.naturalHeight]) {
  const canvas = el("canvas", { class: className, width: w, height: h });
  canvas.getContext("2d").drawImage(image, sx, sy, w, h, 0, 0, w, h);
  return canvas;
}

// What a step without a route's data shows: that it has none and a button to the nearest step
// that has (its 404 answer {error, valid} lists them: some are made on every k-th event only),
// or the route's error when that is not why.
async function elsewhere(route, at, error, store) {
  const response = await fetch(url(route, at));
  const valid = (await response.json().catch(() => null))?.valid;
  const steps = Array.isArray(valid) ? valid : [];
  if (!steps.length || steps.includes(at.step)) return note(error.message);
  const near = nearest(steps, at.step);
  return note(`none at step ${at.step} (logged at ${steps.length} steps)`, el("button", {
    class: "link goto", text: `show step ${near}`, onclick: () => store.update({ step: near }),
  }));
}

function notLogged(run, layer, filters) {
  if (!Object.keys(run.filter_channels).length) return "kernel not logged: this run has log_weights=False; CNNViz(log_weights=True) logs kernels.";
  const logged = own(run.filter_channels, layer) ?? [];
  const how = logged.length ? 'CNNViz(max_channels="all") logs every filter (the first layer: 64)'
    : 'CNNViz(layers="all") logs every conv layer (or name this one in layers=)';
  return `kernel not logged: log_weights logs ${logged.length} of this layer's ${filters} filters${logged.length ? ` (${logged.join(", ")})` : ""}; ${how}.`;
}

// The step's header of a layer's summary of `kind` (filters, feature_vis, ...), from its `event`
// answer; undefined if the step has none. A model changed since the step (a layer widened,
// added) logged other filters then than the run's latest header says.
async function atStep(at, kind) {
  const event = await getJSON("event", { run: at.run, step: at.step, mode: at.mode });
  return part(own(event[kind], at.layer));
}

async function kernel(run, at, filters) {
  if (!(own(run.filter_channels, at.layer) ?? []).includes(at.channel)) return note(notLogged(run, at.layer, filters));
  const header = await atStep(at, "filters");
  if (!header) return note(`no kernels of this layer at step ${at.step}`);
  if (!header.channels.includes(at.channel)) return note(`not logged at step ${at.step}, which logged filters ${header.channels.join(", ")} of this layer`);
  const image = await loadImage("filters", at);
  const [, , kh, kw, depth] = header.shape;
  const what = header.view === "kernel" ? `in colour (its ${depth} input channels)` : "averaged over its input channels";
  return el("figure", { class: "card-figure" }, drawn(image, "kernel"), el("figcaption", { class: "note", text: `${kh}×${kw}, ${what}, scaled to its own range` }));
}

async function topExamples(run, at, store) {
  const logged = run.top_examples;
  if (!logged?.layers?.includes(at.layer)) return note(logged ? "not logged for this layer" : "not logged by this run");
  let top;
  try {
    top = await getJSON("top_examples", at);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return elsewhere("top_examples", at, error, store);
  }
  const strip = await loadImage("top_examples.png", at);
  const [h, w] = top.size;
  const source = top.reference === "probes" ? "probe" : "reference image";
  const rf = own(run.receptive_fields, at.layer);
  const examples = top.images.map((image, i) => {
    const [y, x] = top.positions[i];
    const [y0, x0, y1, x1] = top.boxes[i];
    return el("figure", { class: "example", title: `peak at (${y}, ${x}) of the layer's map; image rows ${y0}…${y1 - 1}, columns ${x0}…${x1 - 1} (zeros outside the image)` },
      drawn(strip, "patch", [i * w, 0, w, h]),
      el("figcaption", {}, el("span", { class: "example-image", text: `${source} ${image}` }), el("span", { class: "example-value", text: fmt(top.values[i], 3) })));
  });
  // a filter that no image makes fire has nothing to show: its "best" are ties at zero or below
  const silent = top.values.every((value) => value === null || value <= 0);
  return el("div", {}, silent ? el("p", { class: "message error", text: `No ${source} makes this filter fire at this step (every peak ≤ 0): it is dead here, and these patches are ties, not what it responds to.` }) : null,
    el("div", { class: "examples" }, ...examples),
    note(`The ${top.images.length} ${source}s it peaks highest on (of ${logged.count}), best first: the ${h}×${w} patch each peak sees${rf ? ` (its receptive field, ${rf[0]}×${rf[1]})` : ""}, and the peak value.`));
}

async function featureVis(run, at, store) {
  const channels = own(run.feature_vis, at.layer) ?? [];
  if (!channels.includes(at.channel)) {
    return note(Object.keys(run.feature_vis ?? {}).length ? `not logged for this filter (logged for ${channels.length ? `filters ${channels.join(", ")} of this layer` : "other layers"})`
      : "not logged: CNNViz(feature_vis=N) makes an image that excites each of the first N logged filters of each logged layer");
  }
  const visualised = await atStep(at, "feature_vis");  // undefined: none at this step (the 404 lists the steps with some)
  if (visualised && !visualised.channels.includes(at.channel)) return note(`not logged for this filter at step ${at.step} (logged then for filters ${visualised.channels.join(", ")})`);
  try {
    const image = await loadImage("feature_vis", at);
    return el("figure", { class: "card-figure" }, drawn(image, "feature-vis"), el("figcaption", { class: "note", text: "an input optimised to excite this filter most" }));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return elsewhere("feature_vis", at, error, store);
  }
}

async function statistics(run, at) {
  const stats = await overSteps("filter_stats", { run: at.run, layer: at.layer, channel: at.channel, mode: at.mode }, run.steps[at.mode]);
  return el("div", { class: "card-charts" }, ...STATS.map(([name, title, yLabel, yRange]) => lineChart({
    title, steps: stats.steps, yLabel, yRange, marker: at.step, series: [{ name, values: stats.stats[name] }],
  })));
}

// A part of the card; one that fails says why and leaves the others.
async function section(part, title, make) {
  let body;
  try {
    body = await make();
  } catch (error) {
    body = el("p", { class: "message error", text: errorText(error) });
  }
  return el("section", { class: "card-section", dataset: { part } }, el("h3", { text: title }), body);
}

export class FilterCard {
  constructor(store) {
    this.store = store;
    this.element = el("aside", { class: "filter-card", hidden: true, "aria-label": "filter card" });
    this.filter = "";  // the filter shown: run, mode, layer, channel
    this.key = "";  // and the step and steps it was drawn for
    this.draws = new DrawOrder();
  }

  close() {
    this.store.update({ cardlayer: undefined, cardchannel: undefined });
  }

  // Draws the card of the state's filter at `step` of `run`, or hides it when none is chosen.
  async show(state, run, step) {
    const open = state.cardlayer !== "" && step !== undefined;
    this.element.hidden = !open;
    if (!open) {  // emptied: opened again, it shows nothing of the last filter while it loads
      this.filter = this.key = "";
      this.element.replaceChildren();
      delete this.element.dataset.ready;
      return;
    }
    const layer = state.cardlayer;
    const channel = Number(state.cardchannel);
    this.filter = JSON.stringify([run.run, state.mode, layer, channel]);
    const key = JSON.stringify([this.filter, step, run.steps[state.mode]]);
    if (key === this.key) return;
    this.key = key;
    const filter = this.filter;
    const draw = this.draws.start();
    const at = { run: run.run, step, mode: state.mode, layer, channel };
    const filters = run.conv_layers[layer].output_shape.at(-1);
    const sections = await Promise.all([
      section("kernel", "Kernel", () => kernel(run, at, filters)),
      section("examples", "Top-activating examples", () => topExamples(run, at, this.store)),
      section("feature-vis", "Feature visualisation", () => featureVis(run, at, this.store)),
      section("stats", "Over training", () => statistics(run, at)),
    ]);
    // drawn in the order schedule.js says, while the card still shows this filter
    if (filter !== this.filter || !this.draws.claim(draw)) return;
    const links = el("nav", { class: "card-links" },
      run.layers.includes(layer) ? el("button", {
        class: "link", text: "feature maps", onclick: () => this.store.update({ view: "activations", layer, channel }),
      }) : el("span", { class: "note", text: "feature maps not logged for this layer" }),
      el("button", { class: "link", text: "evolution", onclick: () => this.store.update({ view: "evolution", evolayer: layer }) }));
    this.element.replaceChildren(
      el("header", { class: "card-head" },
        el("h2", {}, el("span", { class: "card-layer", text: layer }), el("span", { text: ` · filter ${channel}` })),
        el("button", { class: "close", text: "×", title: "close (Esc)", "aria-label": "close", onclick: () => this.close() })),
      el("p", { class: "note", text: `${run.run} · ${state.mode} step ${step} · ${filters} filters in this layer` }),
      links, ...sections);
    this.element.dataset.ready = `${layer}:${channel}:${step}`;
  }
}
