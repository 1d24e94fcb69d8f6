// One run's panel in the content area: its name and step, the warnings of that step
// (health.js) and the view's body; or, in their place, why there is nothing to draw (no steps
// of the mode, an error), so that one failing run or step leaves the others shown.

import { errorText } from "./api.js";
import { el, message } from "./dom.js";
import * as health from "./health.js";

// `view` (views.js) drawing `run` at `step`, a logged step of ctx.state.mode (undefined: none).
export async function panel(view, ctx, run, step) {
  const { mode } = ctx.state;
  const title = el("h2", { class: "panel-title" }, el("span", { text: run.run }), el("span", { class: "note", text: ` · ${mode} step ${step ?? "—"}` }));
  if (step === undefined) {
    const text = run.steps.train.length || run.steps.eval.length ? `run ${run.run} has no ${mode} steps`
      : `run ${run.run} has no steps logged yet: its first event is written when the callback first logs`;
    return el("section", { class: "panel" }, title, message("error", text));
  }
  try {
    const [warning, body] = await Promise.all([health.banner(run, mode, step, ctx.deadAt), view.render(ctx, run, step)]);
    return el("section", { class: "panel", dataset: { run: run.run, step: String(step) } }, title, warning, body);
  } catch (error) {
    return el("section", { class: "panel" }, title, message("error", errorText(error)));
  }
}
