// Which map a Grad-CAM card draws and on what range: the target's (the method's own summary)
// or another class's (the `class_maps` summary: each probe's maps of a few classes), per map
// or on one range shared by every probe and step of the run.

import { ApiError, getJSON, part } from "./api.js";
import { Recent } from "./cache.js";
import { className, el, labelled, select } from "./dom.js";
import { sharedRange } from "./scale.js";

// The explanation methods a run may log (tb_cnnviz/storage/metadata.py METHODS), by name.
export const METHOD_NAMES = {
  gradcam: "Grad-CAM", gradcam_pp: "Grad-CAM++", hirescam: "HiResCAM", xgradcam: "XGrad-CAM", layercam: "LayerCAM",
  eigencam: "Eigen-CAM", scorecam: "Score-CAM", smoothgrad: "SmoothGrad", integrated_gradients: "Integrated Gradients",
};
// The methods whose maps of other classes are stored (the class picker's); the others map the target alone.
export const CLASS_MAP_METHODS = ["gradcam", "gradcam_pp"];

// The methods whose maps a run scores with the trust figures: its callback's methods= (runs
// written before methods= score Grad-CAM's alone), in METHOD_NAMES' order.
export function scoredMethods(run) {
  const scored = new Set(Array.isArray(run.methods) ? run.methods : ["gradcam"]);
  return Object.keys(METHOD_NAMES).filter((method) => scored.has(method));
}

// The methods whose maps a run logs: those it scores, and Grad-CAM++ always.
export function loggedMethods(run) {
  const logged = new Set([...scoredMethods(run), "gradcam_pp"]);
  return Object.keys(METHOD_NAMES).filter((method) => logged.has(method));
}

// The Method picker of a view: `methods` by name, setting state.method.
export function methodPicker(methods, state, store) {
  return labelled("Method", select(methods.map((method) => [method, METHOD_NAMES[method]]), state.method,
    (method) => store.update({ method }), { name: "method" }));
}

// The header of a step's maps of the target classes by `method` (from its `event` answer);
// null where the step did not log that method (a many-pass method runs at some events only).
export function methodHeader(event, method) {
  const header = CLASS_MAP_METHODS.includes(method) ? event[method] : event.method_maps?.[method];
  return header === undefined ? null : part(header);
}

// Runs written before tb_cnnviz stored other classes' maps do not say how many it explains.
export function hasClasses(run) {
  return run.gradcam_classes !== undefined && run.gradcam_classes !== null;
}

// The class whose map each probe shows. Each event stores maps of a few classes per probe
// (`gradcam_classes` in its predictions: the target, the true class, then the most probable
// others), so the picker offers the class by name — the same class on every probe, "not
// stored" on a probe that did not explain it — and the two questions asked of each probe
// whatever its classes: its true class, and the most probable class other than its target.
// Values: "" the target, "true", "other", "c<K>" class K.
export function classPicker(run, state, store) {
  if (!hasClasses(run) || !(run.num_classes > 1)) return null;
  const perProbe = [["other", "most probable other class"]];
  if (run.labels && run.head !== "segmentation") perProbe.unshift(["true", "true class"]);
  const node = el("select", { name: "cls" }, el("option", { value: "", text: "target (the map every event has)" }),
    el("optgroup", { label: "per probe" }, ...perProbe.map(([value, text]) => el("option", { value, text }))),
    el("optgroup", { label: "by class" }, ...Array.from({ length: run.num_classes }, (_, index) =>
      el("option", { value: `c${index}`, text: className(run, index) }))));
  node.value = state.cls;
  if (node.value !== state.cls) node.value = "";  // a link to a class this run does not have
  node.addEventListener("change", () => store.update({ cls: node.value }));
  return labelled("Class", node);
}

// The class a choice means for one probe (null: none, e.g. an unlabelled probe's true class).
function wantedClass(choice, predictions, sample) {
  if (choice === "true") {
    const label = predictions.label?.[sample];
    if (typeof label === "number") return label >= 0 ? label : null;  // -1: a probe with no true class
    return Array.isArray(label) && label.length ? Math.min(...label) : null;
  }
  if (choice === "other") return (predictions.top_classes?.[sample] ?? []).find((c) => c !== predictions.target[sample]) ?? null;
  const index = Number(choice.slice(1));
  return /^c[0-9]+$/.test(choice) ? index : undefined;  // undefined: a link's choice that is no class
}

// What the picked choice means for one probe: null for the target map, { index, slot,
// probability } for a stored class, { missing, stored } when the probe does not store it.
export function pick(choice, predictions, sample) {
  if (!choice) return null;
  const stored = predictions.gradcam_classes?.[sample] ?? [];
  const wanted = wantedClass(choice, predictions, sample);
  if (wanted === undefined) return null;
  const slot = wanted === null ? -1 : stored.indexOf(wanted);
  if (slot < 0) return { missing: wanted, stored };
  return { index: wanted, slot, probability: predictions.class_probabilities?.[sample]?.[slot] ?? null };
}

// Where a probe's map of its stored class `slot` sits in the class_maps summary: each probe
// holds its Grad-CAM of every stored class, then its Grad-CAM++ of each (header.methods).
export function classMapPosition(header, method, sample, slot) {
  return Math.max(0, (header.methods ?? ["gradcam", "gradcam_pp"]).indexOf(method)) * header.classes[sample].length + slot;
}

// Each probe's map at a step: { lo, hi, choice } with the 8-bit range of the map drawn, or
// { choice } alone when the probe has no stored map of the picked class.
export function maps(event, method, choice) {
  const { predictions } = event;
  if (!choice || !CLASS_MAP_METHODS.includes(method)) {
    const header = methodHeader(event, method);
    if (header === null) throw new ApiError(`${METHOD_NAMES[method]} is not logged at this step: it runs where deletion and insertion do (trust_every, or expensive_every)`);
    return header.lo.map((lo, sample) => ({ lo: lo[0], hi: header.hi[sample][0], choice: null }));
  }
  const header = event.class_maps ? part(event.class_maps) : null;
  return predictions.predicted.map((_, sample) => {
    const picked = pick(choice, predictions, sample);
    if (!header || picked.missing !== undefined) return { choice: picked.missing !== undefined ? picked : { missing: picked.index, stored: [] } };
    const position = classMapPosition(header, method, sample, picked.slot);
    return { lo: header.lo[sample][position], hi: header.hi[sample][position], choice: picked };
  });
}

// The shared scale: one range over every probe's map (of the method and class shown) at
// every step of the run in this mode. Each step's ranges are in its `event` answer, fetched
// a few at a time and cached by URL, so the scale is computed once per run and choice.
const sharedScales = new Recent(32);

export function sharedScale(run, mode, method, choice) {
  const steps = run.steps[mode];
  return sharedScales.get(JSON.stringify([run.run, mode, method, choice, steps]), async () => {
    const los = [];
    const his = [];
    let counted = 0;
    let absent = 0;  // steps that did not log the method (a many-pass one runs at some events only)
    await inTurn(steps, 6, async (step) => {
      try {
        const event = await getJSON("event", { run: run.run, step, mode });
        if (!CLASS_MAP_METHODS.includes(method) && methodHeader(event, method) === null) {
          absent += 1;
          return;
        }
        const ranges = maps(event, method, choice).filter((m) => m.lo !== undefined);
        los.push(...ranges.map((m) => m.lo));
        his.push(...ranges.map((m) => m.hi));
        counted += 1;
      } catch { /* a damaged step: the scale is taken over the others, and says how many */ }
    });
    const [low, high] = sharedRange(los, his);
    return { low, high, steps: counted, of: steps.length - absent, maps: his.length };
  });
}

// Runs `work(item)` over the items, at most `width` at a time.
async function inTurn(items, width, work) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}
