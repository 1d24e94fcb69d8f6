// The page around the tab's iframe, whose URL hash, theme and keys the tab follows: TensorBoard's
// window when it is of the same origin (TensorBoard serves both), else the tab's own window
// (the tab opened on its own, or embedded by a page of another origin, which it cannot read).

export function hostWindow() {
  try {
    return window.parent.location.href ? window.parent : window;
  } catch {
    return window;
  }
}
