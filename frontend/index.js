// The cnnviz tab. TensorBoard loads this module in an iframe whose base URL is
// data/plugin/cnnviz/ and calls render() once. All fetches are relative; untrusted names are
// only ever set with textContent.

import { ApiError, getJSON } from "./api.js";
import { el, message, select } from "./dom.js";
import { FilterCard } from "./filter_card.js";
import * as health from "./health.js";
import { Store, nearest } from "./state.js";
import { StepControl } from "./step_control.js";
import * as activations from "./view_activations.js";
import * as evolution from "./view_evolution.js";
import * as filters from "./view_filters.js";
import * as gradcam from "./view_gradcam.js";
import * as layers from "./view_layers.js";
import * as trust from "./view_trust.js";

const VIEWS = { gradcam, activations, filters, evolution, layers, trust };
const REFRESH_MS = 30000;  // new steps of a run still training appear without a reload
const SNIPPET = `from tb_cnnviz import CNNViz
cb = CNNViz("logs/run1", samples=x_val[:8], labels=y_val[:8])
model.fit(x, y, epochs=10, callbacks=[cb])`;

function followTheme() {
  const apply = () => {
    let dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    try {
      dark = window.parent.document.body.classList.contains("dark-mode") || dark;
    } catch { /* not inside TensorBoard */ }
    document.documentElement.classList.toggle("dark", dark);
  };
  apply();
  try {
    new MutationObserver(apply).observe(window.parent.document.body, { attributes: true, attributeFilter: ["class"] });
  } catch { /* not inside TensorBoard */ }
}

class App {
  constructor(root) {
    this.root = root;
    this.store = new Store();
    this.generation = 0;  // of the newest update started
    this.drawnGeneration = 0;  // of the update on screen
    this.pending = false;
    this.stepControl = new StepControl((step, dragging) => this.store.update({ step }, { dragging }));
    this.card = new FilterCard(this.store);
  }

  async start() {
    this.root.replaceChildren(message("loading", "Loading cnnviz data…"));
    let runs;
    try {
      runs = (await getJSON("runs", {}, { fresh: true })).runs;
    } catch (error) {
      this.root.replaceChildren(message("error", `Could not load cnnviz data: ${error.message}`));
      return;
    }
    this.broken = el("div", { class: "broken" });
    this.setRuns(runs);
    if (!this.runs.length && !this.brokenRuns.length) {
      this.root.replaceChildren(message("empty", "No cnnviz data yet. Log some with the CNNViz Keras callback, then reload:", el("pre", { text: SNIPPET })));
      return;
    }
    if (!this.runs.length) {
      this.root.replaceChildren(this.broken);
      return;
    }
    this.header = el("header", { class: "bar" });
    this.toolbar = el("div", { class: "bar toolbar" });
    this.content = el("main", { class: "content" });
    this.root.replaceChildren(this.broken, this.header, this.toolbar, this.stepControl.element, this.content, this.card.element);
    this.store.subscribe(() => this.schedule());
    for (const target of [document, window.parent.document]) {
      try {
        target.addEventListener("keydown", (event) => this.onKey(event));
      } catch { /* cross-origin parent */ }
    }
    this.layoutKey = this.shownKey = "";
    this.schedule();
    setInterval(() => this.refreshRuns(), REFRESH_MS);
  }

  // Runs the backend could not read come with an error instead of data: listed, not shown.
  setRuns(runs) {
    this.allRuns = runs;
    this.runs = runs.filter((run) => !run.error);
    this.brokenRuns = runs.filter((run) => run.error);
    this.byName = new Map(this.runs.map((run) => [run.run, run]));
    this.broken.replaceChildren(...this.brokenRuns.map((run) => message("error", `Run ${run.run}: ${run.error}`)));
  }

  async refreshRuns() {
    try {
      const runs = (await getJSON("runs", {}, { fresh: true })).runs;
      if (runs.some((run) => !run.error) && JSON.stringify(runs) !== JSON.stringify(this.allRuns)) {
        this.setRuns(runs);
        this.layoutKey = this.shownKey = "";
        this.schedule();
      }
    } catch { /* keep showing what we have; the next refresh tries again */ }
  }

  onKey(event) {
    if (event.key === "Escape" && this.store.state.cardlayer !== "") {  // wherever the focus is
      this.card.close();
      return;
    }
    // Form controls (the step slider, opacity, TensorBoard's own inputs) handle their own keys.
    if (["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName)) return;
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      this.stepControl.move(event.key === "ArrowLeft" ? -1 : 1);
    }
  }

  // Makes the state valid for the data: a known run, a mode with steps, a logged step.
  normalised(state) {
    const run = this.byName.get(state.run) || this.runs[0];
    // the wanted mode if it has steps, else the first that has (an evaluate-only run: eval)
    const mode = [state.mode, "train", "eval"].find((m) => run.steps[m]?.length) || "train";
    const steps = run.steps[mode];
    const wanted = state.step === "" ? steps[steps.length - 1] : Number(state.step);
    const step = steps.includes(wanted) ? wanted : nearest(steps, wanted);
    const view = Object.hasOwn(VIEWS, state.view) ? state.view : "gradcam";
    // links made before the method was named gradcam_pp say gradcam++
    const method = state.method === "gradcam++" ? "gradcam_pp" : Object.hasOwn(gradcam.METHODS, state.method) ? state.method : "gradcam";
    const cmp = this.byName.has(state.cmp) && state.cmp !== run.run ? state.cmp : "";
    // the card's filter: one of a conv layer of this run, else no card
    const filterCount = Object.hasOwn(run.conv_layers, state.cardlayer) ? run.conv_layers[state.cardlayer].output_shape.at(-1) : 0;
    const card = /^\d+$/.test(state.cardchannel) && Number(state.cardchannel) < filterCount
      ? { cardlayer: state.cardlayer, cardchannel: String(Number(state.cardchannel)) } : { cardlayer: "", cardchannel: "" };
    return { ...state, run: run.run, mode, step: step === undefined ? "" : String(step), view, method, cmp, ...card };
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.update();
    });
  }

  buildHeader(state) {
    const runNames = this.runs.map((run) => run.run);
    const tabs = el("nav", { class: "tabs" }, ...Object.entries(VIEWS).map(([key, view]) => el("button", {
      class: key === state.view ? "tab active" : "tab", text: view.label, dataset: { view: key },
      onclick: () => this.store.update({ view: key }),
    })));
    const modes = el("div", { class: "modes" }, ...["train", "eval"].map((mode) => el("button", {
      class: mode === state.mode ? "mode active" : "mode", text: mode, dataset: { mode },
      disabled: !this.byName.get(state.run).steps[mode].length,
      onclick: () => this.store.update({ mode }),
    })));
    this.header.replaceChildren(tabs,
      el("label", { class: "control" }, el("span", { text: "Run" }), select(runNames, state.run, (run) => this.store.update({ run }), { name: "run" })),
      el("label", { class: "control" }, el("span", { text: "Compare with" }), select([["", "—"], ...runNames.filter((name) => name !== state.run)], state.cmp, (cmp) => this.store.update({ cmp }), { name: "cmp" })),
      modes);
  }

  async update() {
    const state = this.normalised(this.store.state);
    if (Object.keys(state).some((key) => state[key] !== this.store.state[key])) {
      this.store.update(state);  // schedules another update with the corrected state
      return;
    }
    const run = this.byName.get(state.run);
    const step = state.step === "" ? undefined : Number(state.step);  // "": the run has no steps yet
    this.card.show(state, run, step);
    this.root.classList.toggle("with-card", !this.card.element.hidden);
    const shownKey = JSON.stringify({ ...state, cardlayer: "", cardchannel: "" });
    if (shownKey === this.shownKey) return;  // only the card changed: the view stays as it is
    this.shownKey = shownKey;
    const generation = ++this.generation;
    const view = VIEWS[state.view];
    const runs = [run, ...(state.cmp ? [this.byName.get(state.cmp)] : [])];
    const ctx = { state, store: this.store, runs, content: this.content };
    const layoutKey = JSON.stringify([state.view, state.run, state.cmp, state.mode, state.method, state.cmap, state.layer, state.norm, state.stat, state.evolayer, state.scale, state.cls, state.outline]);
    if (layoutKey !== this.layoutKey) {
      this.layoutKey = layoutKey;
      this.buildHeader(state);
      this.toolbar.replaceChildren(...view.toolbar(ctx));
      this.toolbar.hidden = !this.toolbar.childElementCount;
    }
    this.content.style.setProperty("--heat-opacity", state.opacity);
    this.stepControl.set(run.steps[state.mode], step);
    const panels = await Promise.all(runs.map(async (one) => {
      const steps = one.steps[state.mode];
      const oneStep = one === run ? step : nearest(steps, step);
      const title = el("h2", { class: "panel-title" }, el("span", { text: one.run }), el("span", { class: "note", text: ` · ${state.mode} step ${oneStep ?? "—"}` }));
      if (oneStep === undefined) {
        const text = one.steps.train.length || one.steps.eval.length ? `run ${one.run} has no ${state.mode} steps`
          : `run ${one.run} has no steps logged yet: its first event is written when the callback first logs`;
        return el("section", { class: "panel" }, title, message("error", text));
      }
      try {
        const [warning, body] = await Promise.all([health.banner(one, state.mode, oneStep), view.render(ctx, one, oneStep)]);
        return el("section", { class: "panel", dataset: { run: one.run, step: String(oneStep) } }, title, warning, body);
      } catch (error) {
        const text = error instanceof ApiError ? error.message : `${error.name}: ${error.message}`;
        return el("section", { class: "panel" }, title, message("error", text));
      }
    }));
    // An update that finishes after a newer one started is still drawn if nothing newer is on
    // screen and the layout is the same: moving through steps faster than they load shows each
    // step as it arrives, not nothing until the last one has loaded.
    if (generation < this.drawnGeneration || layoutKey !== this.layoutKey) return;
    this.drawnGeneration = generation;
    this.content.replaceChildren(el("div", { class: runs.length > 1 ? "panels compare" : "panels" }, ...panels));
    this.content.dataset.ready = `${state.view}:${state.step}`;
    this.prefetch(ctx, run, step);
  }

  prefetch(ctx, run, step) {
    if (!VIEWS[ctx.state.view].prefetch) return;
    const steps = run.steps[ctx.state.mode];
    const index = steps.indexOf(step);
    for (const neighbour of [steps[index + 1], steps[index - 1], steps[index + 2]]) {
      if (neighbour !== undefined) VIEWS[ctx.state.view].prefetch(ctx, run, neighbour);
    }
  }
}

export async function render() {
  const link = el("link", { rel: "stylesheet", href: "./style.css" });
  document.head.append(link);
  followTheme();
  const root = el("div", { class: "cnnviz" });
  document.body.append(root);
  await new App(root).start();
}
