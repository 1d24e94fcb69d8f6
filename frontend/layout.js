// The tab's page: a message alone while there is nothing to show (loading, failed, no data
// yet), else the list of unreadable runs, the header bar (a tab per view, the run, the run to
// compare with, train or eval), the view's toolbar, the step bar, the content and the filter
// card, in that order. What is drawn in them is index.js's.

import { el, message, select } from "./dom.js";
import { VIEWS } from "./views.js";

const SNIPPET = `from tb_cnnviz import CNNViz
cb = CNNViz("logs/run1", samples=x_val[:8], labels=y_val[:8])
model.fit(x, y, epochs=10, callbacks=[cb])`;

export function loading() {
  return message("loading", "Loading cnnviz data…");
}

export function loadFailed(error) {
  return message("error", `Could not load cnnviz data: ${error.message}`);
}

// No run at all: how to log one.
export function noData() {
  return message("empty", "No cnnviz data yet. Log some with the CNNViz Keras callback, then reload:", el("pre", { text: SNIPPET }));
}

// Lays the page out in `root` around the parts made elsewhere; returns the parts made here.
export function page(root, { broken, stepBar, card }) {
  const header = el("header", { class: "bar" });
  const toolbar = el("div", { class: "bar toolbar" });
  const content = el("main", { class: "content" });
  root.replaceChildren(broken, header, toolbar, stepBar, content, card);
  return { header, toolbar, content };
}

// The header bar's controls for the selection `state` over `runs` (runs.js).
export function headerControls(state, runs, store) {
  const runNames = runs.list.map((run) => run.run);
  const tabs = el("nav", { class: "tabs" }, ...Object.entries(VIEWS).map(([key, view]) => el("button", {
    class: key === state.view ? "tab active" : "tab", text: view.label, dataset: { view: key },
    onclick: () => store.update({ view: key }),
  })));
  const modes = el("div", { class: "modes" }, ...["train", "eval"].map((mode) => el("button", {
    class: mode === state.mode ? "mode active" : "mode", text: mode, dataset: { mode },
    disabled: !runs.byName.get(state.run).steps[mode].length,
    onclick: () => store.update({ mode }),
  })));
  return [tabs,
    el("label", { class: "control" }, el("span", { text: "Run" }), select(runNames, state.run, (run) => store.update({ run }), { name: "run" })),
    el("label", { class: "control" }, el("span", { text: "Compare with" }), select([["", "—"], ...runNames.filter((name) => name !== state.run)], state.cmp, (cmp) => store.update({ cmp }), { name: "cmp" })),
    modes];
}
