// The runs the plugin serves (its `runs` route): those it could read, by name, and those it
// could not, listed with their errors instead of shown; asked again every 30 s, so that a run
// still training shows its new steps without a reload. The same answer carries dead_at, the
// dead_fraction from which a filter reads dead (health.js isDead), read here only.

import { getJSON } from "./api.js";
import { el, message } from "./dom.js";

const REFRESH_MS = 30000;

export class Runs {
  constructor() {
    this.element = el("div", { class: "broken" });  // the runs that could not be read
    this.answer = null;
    this.list = [];  // the runs that could be read, in the plugin's order
    this.failed = [];
    this.byName = new Map();
    this.deadAt = undefined;
  }

  // Asks for the runs; throws what stopped it.
  async load() {
    this.take(await getJSON("runs", {}, { fresh: true }));
  }

  take(answer) {
    this.answer = answer;
    this.list = answer.runs.filter((run) => !run.error);
    this.failed = answer.runs.filter((run) => run.error);
    this.byName = new Map(this.list.map((run) => [run.run, run]));
    this.deadAt = answer.dead_at;
    this.element.replaceChildren(...this.failed.map((run) => message("error", `Run ${run.run}: ${run.error}`)));
  }

  // Asks for the runs again every REFRESH_MS and calls onChange() when the answer has changed
  // and still has a run to show.
  watch(onChange) {
    setInterval(async () => {
      try {
        const answer = await getJSON("runs", {}, { fresh: true });
        if (answer.runs.some((run) => !run.error) && JSON.stringify(answer) !== JSON.stringify(this.answer)) {
          this.take(answer);
          onChange();
        }
      } catch { /* keep showing what we have; the next refresh tries again */ }
    }, REFRESH_MS);
  }
}
