// The cnnviz tab. TensorBoard loads this module in an iframe whose base URL is
// data/plugin/cnnviz/ and calls render() once. All fetches are relative; untrusted names are
// only ever set with textContent. App coordinates: it makes the selection (state.js) valid for
// the runs and decides what it shows — which view draws which runs at which step, the step bar
// and the filter card — leaving the page (layout.js), the runs (runs.js), keys, theme and the
// timing of drawings (schedule.js) to modules of their own.

import { el } from "./dom.js";
import { FilterCard } from "./filter_card.js";
import { loggedMethods } from "./gradcam_maps.js";
import { listenKeys } from "./keys.js";
import { headerControls, loadFailed, loading, noData, page } from "./layout.js";
import { panel } from "./panel.js";
import { Runs } from "./runs.js";
import { DrawOrder, perFrame } from "./schedule.js";
import { Store, nearest } from "./state.js";
import { StepControl } from "./step_control.js";
import { followTheme } from "./theme.js";
import { VIEWS } from "./views.js";

class App {
  constructor(root) {
    this.root = root;
    this.store = new Store();
    this.runs = new Runs();
    this.draws = new DrawOrder();
    this.schedule = perFrame(() => this.update());
    this.stepControl = new StepControl((step, dragging) => this.store.update({ step }, { dragging }));
    this.card = new FilterCard(this.store);
  }

  async start() {
    this.root.replaceChildren(loading());
    try {
      await this.runs.load();
    } catch (error) {
      this.root.replaceChildren(loadFailed(error));
      return;
    }
    if (!this.runs.list.length) {  // nothing to show: the unreadable runs, or how to log one
      this.root.replaceChildren(this.runs.failed.length ? this.runs.element : noData());
      return;
    }
    ({ header: this.header, toolbar: this.toolbar, content: this.content } = page(this.root,
      { broken: this.runs.element, stepBar: this.stepControl.element, card: this.card.element }));
    this.store.subscribe(() => this.schedule());
    listenKeys({
      onEscape: () => {
        if (this.store.state.cardlayer !== "") this.card.close();
      },
      onStep: (delta) => this.stepControl.move(delta),
    });
    this.layoutKey = this.shownKey = "";
    this.schedule();
    this.runs.watch(() => {
      this.layoutKey = this.shownKey = "";
      this.schedule();
    });
  }

  // Makes the state valid for the data: a known run, a mode with steps, a logged step.
  normalised(state) {
    const run = this.runs.byName.get(state.run) || this.runs.list[0];
    // the wanted mode if it has steps, else the first that has (an evaluate-only run: eval)
    const mode = [state.mode, "train", "eval"].find((m) => run.steps[m]?.length) || "train";
    const steps = run.steps[mode];
    const wanted = state.step === "" ? steps[steps.length - 1] : Number(state.step);
    const step = steps.includes(wanted) ? wanted : nearest(steps, wanted);
    const view = Object.hasOwn(VIEWS, state.view) ? state.view : "gradcam";
    // links made before the method was named gradcam_pp say gradcam++
    const method = state.method === "gradcam++" ? "gradcam_pp" : loggedMethods(run).includes(state.method) ? state.method : "gradcam";
    const cmp = this.runs.byName.has(state.cmp) && state.cmp !== run.run ? state.cmp : "";
    // the card's filter: one of a conv layer of this run, else no card
    const filterCount = Object.hasOwn(run.conv_layers, state.cardlayer) ? run.conv_layers[state.cardlayer].output_shape.at(-1) : 0;
    const card = /^\d+$/.test(state.cardchannel) && Number(state.cardchannel) < filterCount
      ? { cardlayer: state.cardlayer, cardchannel: String(Number(state.cardchannel)) } : { cardlayer: "", cardchannel: "" };
    return { ...state, run: run.run, mode, step: step === undefined ? "" : String(step), view, method, cmp, ...card };
  }

  // The header and the view's toolbar, made again only when what they show has changed (not
  // at every step: a control is not replaced while in use); returns what they were made for.
  relayout(ctx) {
    const { state } = ctx;
    const layoutKey = JSON.stringify([state.view, state.run, state.cmp, state.mode, state.method, state.cmap, state.layer, state.norm, state.stat, state.evolayer, state.scale, state.cls, state.outline]);
    if (layoutKey !== this.layoutKey) {
      this.layoutKey = layoutKey;
      this.header.replaceChildren(...headerControls(state, this.runs, this.store));
      this.toolbar.replaceChildren(...VIEWS[state.view].toolbar(ctx));
      this.toolbar.hidden = !this.toolbar.childElementCount;
    }
    return layoutKey;
  }

  async update() {
    const state = this.normalised(this.store.state);
    if (Object.keys(state).some((key) => state[key] !== this.store.state[key])) {
      this.store.update(state);  // schedules another update with the corrected state
      return;
    }
    const run = this.runs.byName.get(state.run);
    const step = state.step === "" ? undefined : Number(state.step);  // "": the run has no steps yet
    this.card.show(state, run, step);
    this.root.classList.toggle("with-card", !this.card.element.hidden);
    const shownKey = JSON.stringify({ ...state, cardlayer: "", cardchannel: "" });
    if (shownKey === this.shownKey) return;  // only the card changed: the view stays as it is
    this.shownKey = shownKey;
    const draw = this.draws.start();
    const view = VIEWS[state.view];
    const runs = [run, ...(state.cmp ? [this.runs.byName.get(state.cmp)] : [])];
    const ctx = { state, store: this.store, runs, content: this.content, deadAt: this.runs.deadAt };
    const layoutKey = this.relayout(ctx);
    this.content.style.setProperty("--heat-opacity", state.opacity);
    this.stepControl.set(run.steps[state.mode], step);
    // a compared run at its logged step nearest the selected one
    const panels = await Promise.all(runs.map((one) => panel(view, ctx, one, one === run ? step : nearest(one.steps[state.mode], step))));
    // drawn in the order schedule.js says, and only into the layout it was made for
    if (layoutKey !== this.layoutKey || !this.draws.claim(draw)) return;
    this.content.replaceChildren(el("div", { class: runs.length > 1 ? "panels compare" : "panels" }, ...panels));
    this.content.dataset.ready = `${state.view}:${state.step}`;
    this.prefetch(ctx, run, step);
  }

  // The next two steps and the previous one, which moving through steps shows next.
  prefetch(ctx, run, step) {
    const view = VIEWS[ctx.state.view];
    if (!view.prefetch) return;
    const steps = run.steps[ctx.state.mode];
    const index = steps.indexOf(step);
    for (const neighbour of [steps[index + 1], steps[index - 1], steps[index + 2]]) {
      if (neighbour !== undefined) view.prefetch(ctx, run, neighbour);
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
