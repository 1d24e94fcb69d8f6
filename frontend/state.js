// The selection shared by every view, kept in TensorBoard's URL hash for deep links:
// TensorBoard's hash is "#cnnviz"; our keys follow it as "&cv-<key>=<value>".

import { hostWindow } from "./host.js";

const PREFIX = "cv-";
export const DEFAULTS = {
  view: "gradcam", run: "", cmp: "", mode: "train", step: "", sample: "0", layer: "",
  channel: "", stat: "cos_to_first", method: "gradcam", cmap: "jet", opacity: "0.5", norm: "map",
  evolayer: "", evosort: "", scale: "map", cls: "", outline: "",
  cardlayer: "", cardchannel: "",  // the filter card's filter ("": closed)
};

// The logged step nearest a wanted one (a link's step, a compared run's, a step that lacks data).
export function nearest(steps, step) {
  if (!steps.length) return undefined;
  return steps.reduce((best, s) => (Math.abs(s - step) < Math.abs(best - step) ? s : best), steps[0]);
}

export function readState() {
  const state = { ...DEFAULTS };
  for (const part of hostWindow().location.hash.replace(/^#/, "").split("&")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    let key;
    let value;
    try {
      key = decodeURIComponent(part.slice(0, eq));
      value = decodeURIComponent(part.slice(eq + 1));
    } catch {
      continue;  // a truncated or hand-edited link: ignore that part
    }
    if (key.startsWith(PREFIX) && Object.hasOwn(DEFAULTS, key.slice(PREFIX.length))) {
      state[key.slice(PREFIX.length)] = value;
    }
  }
  return state;
}

function writeHash(state) {
  const host = hostWindow();
  const kept = host.location.hash.replace(/^#/, "").split("&").filter((p) => p && !p.startsWith(PREFIX));
  const ours = Object.entries(state)
    .filter(([key, value]) => value !== DEFAULTS[key])
    .map(([key, value]) => `${PREFIX}${key}=${encodeURIComponent(value)}`);
  host.history.replaceState(host.history.state, "", `#${[...kept, ...ours].join("&")}`);
}

export class Store {
  constructor() {
    this.state = readState();
    this.listeners = [];
    this.unwritten = false;  // a drag moved the step without writing the hash yet
    // Back/forward or an edited address: follow the hash.
    hostWindow().addEventListener("hashchange", () => {
      this.state = readState();
      for (const listener of this.listeners) listener(this.state);
    });
  }

  subscribe(listener) {
    this.listeners.push(listener);
  }

  // dragging: one of many updates in a row (a slider drag); the hash is written by the next
  // update without it, even one that changes nothing (the drag's release).
  update(patch, { dragging = false } = {}) {
    const next = { ...this.state };
    for (const [key, value] of Object.entries(patch)) next[key] = value === undefined ? DEFAULTS[key] : String(value);
    const changed = Object.keys(next).some((key) => next[key] !== this.state[key]);
    this.unwritten ||= dragging && changed;
    if (!dragging && (changed || this.unwritten)) {
      writeHash(next);
      this.unwritten = false;
    }
    if (!changed) return;
    this.state = next;
    for (const listener of this.listeners) listener(next);
  }
}
