// Small DOM helpers. Text always goes through textContent: run, layer and class names are
// untrusted and must never be parsed as HTML.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

export function select(options, value, onChange, props = {}) {
  const node = el("select", props);
  for (const option of options) {
    const [optionValue, label] = Array.isArray(option) ? option : [option, option];
    node.append(el("option", { value: optionValue, text: label }));
  }
  node.value = value;
  node.addEventListener("change", () => onChange(node.value));
  return node;
}

export function labelled(text, control) {
  return el("label", { class: "control" }, el("span", { text }), control);
}

export function message(kind, text, ...extra) {
  return el("div", { class: `message ${kind}` }, el("p", { text }), ...extra);
}

// Position of a mouse event in a canvas's own pixels (canvases are drawn scaled by CSS).
export function canvasPoint(canvas, event) {
  const rect = canvas.getBoundingClientRect();
  return [((event.clientX - rect.left) / rect.width) * canvas.width,
    ((event.clientY - rect.top) / rect.height) * canvas.height];
}

// Places a tooltip beside the pointer, `top` pixels down its container `box` (a client rect):
// right of the pointer in the box's left half, left of it in the right half, so that it stays
// inside the box.
export function placeTooltip(tooltip, box, event, top) {
  const left = event.clientX - box.left;
  tooltip.style.left = `${left > box.width / 2 ? left - tooltip.offsetWidth - 12 : left + 12}px`;
  tooltip.style.top = `${Math.max(0, top)}px`;
}

// What a run's faithfulness number measures (its fraction comes with the run; runs served by
// an older plugin do not carry it).
export function faithfulnessMeaning(run) {
  const share = typeof run.faithfulness_fraction === "number" ? ` ${Number((run.faithfulness_fraction * 100).toPrecision(3))} %` : "";
  return `probability drop when the top${share} of Grad-CAM is blurred`;
}

// A class's name, as the run names it (names are untrusted: set them with textContent).
export function className(run, index) {
  return run.class_names?.[index] ?? `class ${index}`;
}

export function fmt(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "n/a";
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e4) ? value.toExponential(2) : value.toFixed(digits);
}

// [min, max] of the finite numbers in an array (no spread: it overflows the call stack on
// large arrays), or [undefined, undefined] when there are none.
export function extent(values) {
  let low;
  let high;
  for (const value of values) {
    if (value === null || !Number.isFinite(value)) continue;
    if (low === undefined || value < low) low = value;
    if (high === undefined || value > high) high = value;
  }
  return [low, high];
}
