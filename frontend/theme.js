// Light or dark as TensorBoard is (its body's dark-mode class, which its settings switch while
// the tab is open) or as the system prefers: the tab's colours are keyed on html.dark
// (style.css), so that it never sits light inside a dark TensorBoard.

import { hostWindow } from "./host.js";

export function followTheme() {
  const body = hostWindow().document.body;
  const apply = () => {
    const dark = body.classList.contains("dark-mode") || window.matchMedia("(prefers-color-scheme: dark)").matches;
    document.documentElement.classList.toggle("dark", dark);
  };
  apply();
  new MutationObserver(apply).observe(body, { attributes: true, attributeFilter: ["class"] });
}
