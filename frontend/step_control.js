// The step bar shared by every view: slider over the logged steps, previous/next, play/pause
// with a speed choice. Built once and updated in place, so a drag is never interrupted.

import { el, select } from "./dom.js";

const SPEEDS = [["0.5", "0.5 step/s"], ["1", "1 step/s"], ["2", "2 steps/s"], ["5", "5 steps/s"], ["10", "10 steps/s"]];

export class StepControl {
  constructor(onStep) {
    this.onStep = onStep;
    this.steps = [];
    this.timer = null;
    this.slider = el("input", { type: "range", min: "0", max: "0", value: "0", class: "step-slider", "aria-label": "step" });
    // A drag draws every step it passes but leaves the link (URL hash) to its release: writing
    // the hash costs about as much as drawing a step (bench/frontend_fps.py).
    this.slider.addEventListener("input", () => this.go(Number(this.slider.value), true));
    this.slider.addEventListener("change", () => this.go(Number(this.slider.value)));
    this.label = el("span", { class: "step-label" });
    this.play = el("button", { class: "play", text: "▶ Play", title: "play / pause", onclick: () => this.toggle() });
    this.speed = select(SPEEDS, "2", () => this.timer && this.start(), { "aria-label": "speed" });
    this.element = el("div", { class: "step-bar" },
      el("button", { text: "◀", title: "previous step (←)", onclick: () => this.move(-1) }),
      this.slider,
      el("button", { text: "▶", title: "next step (→)", onclick: () => this.move(1) }),
      this.label, this.play, this.speed);
  }

  set(steps, step) {
    this.steps = steps;
    const index = Math.max(0, steps.indexOf(step));
    this.slider.max = String(Math.max(0, steps.length - 1));
    this.slider.value = String(index);
    this.slider.disabled = steps.length < 2;
    this.label.textContent = steps.length ? `step ${step}  (${index + 1} of ${steps.length})` : "no steps";
  }

  go(index, dragging = false) {
    if (!this.steps.length) return;
    const clamped = Math.min(this.steps.length - 1, Math.max(0, index));
    // at once, not at the next drawing (`set`): the next move, maybe before it, starts from here
    this.slider.value = String(clamped);
    this.onStep(this.steps[clamped], dragging);
  }

  move(delta) {
    this.go(Number(this.slider.value) + delta);
  }

  toggle() {
    if (this.timer) this.stop();
    else this.start();
  }

  start() {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      const next = Number(this.slider.value) + 1;
      this.go(next >= this.steps.length ? 0 : next);
    }, 1000 / Number(this.speed.value));
    this.play.textContent = "❚❚ Pause";
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.play.textContent = "▶ Play";
  }
}
