// The tab's keys, taken wherever the focus is, in the tab or on TensorBoard's page around it
// (after a click on TensorBoard's own bar, the arrows still move the step): Escape, and ← and →
// outside form controls, which keep their own keys (the step slider, TensorBoard's inputs).

import { hostWindow } from "./host.js";

export function listenKeys({ onEscape, onStep }) {
  const onKey = (event) => {
    if (event.key === "Escape") {
      onEscape();
      return;
    }
    if (["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName)) return;
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      onStep(event.key === "ArrowLeft" ? -1 : 1);
    }
  };
  for (const target of new Set([document, hostWindow().document])) target.addEventListener("keydown", onKey);
}
