// Honest colour scales for 8-bit maps. Each stored map is quantised over its own range
// [lo, hi] (tb_cnnviz/storage/codec.py), so drawing its levels as they are stretches any range
// to the full colormap: a map of float noise (a model that has not learned, a layer of dead
// filters) would show a bright spot that means nothing. A map whose range is negligible is
// drawn flat; a shared scale draws every map on one range.

import { extent } from "./dom.js";

export const RELATIVE = 1e-3;  // of the median per-map maximum among the maps drawn with it
export const ABSOLUTE = 1e-7;

// A map's size: its largest absolute value (Grad-CAM maps and ReLU maps are >= 0: their max).
export function magnitude(lo, hi) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return Number.NaN;
  return Math.max(Math.abs(lo), Math.abs(hi));
}

// A number in two significant digits: 0.001, 1.6e-14, 1.5.
export function short(value) {
  return value === 0 ? "0" : String(Number(value.toPrecision(2)));
}

export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!sorted.length) return Number.NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

// The rule for one group of maps (one step's Grad-CAM maps, one step's maps of a layer):
// `his`/`los` are flat lists of per-map ranges. Returns { median, threshold, test(lo, hi) }
// where test says why a map is negligible ("" when it is not).
export function negligibleRule(los, his) {
  const sizes = his.map((hi, i) => magnitude(los[i], hi));
  const middle = median(sizes);
  const relative = Number.isFinite(middle) ? RELATIVE * middle : 0;
  const threshold = Math.max(ABSOLUTE, relative);
  return {
    median: middle,
    threshold,
    test(lo, hi) {
      const size = magnitude(lo, hi);
      if (!Number.isFinite(size) || size >= threshold) return "";
      if (size === 0) return "zero everywhere";
      if (size < ABSOLUTE) return `max ${short(size)}, below ${ABSOLUTE.toExponential(0)}`;
      return `max ${short(size)}, below ${RELATIVE.toExponential(0)} × this step's median max (${short(middle)})`;
    },
  };
}

// 256-entry table from a map's stored levels to the levels of the range [low, high]
// (values outside it clamp); all zeros when the range is empty.
export function levelTable(lo, hi, low, high) {
  const table = new Uint8Array(256);
  if (!(high > low)) return table;
  for (let level = 0; level < 256; level += 1) {
    const value = lo + (level / 255) * (hi - lo);
    table[level] = Math.min(255, Math.max(0, Math.round(((value - low) / (high - low)) * 255)));
  }
  return table;
}

export function relevel(levels, table) {
  const out = new Uint8Array(levels.length);
  for (let i = 0; i < levels.length; i += 1) out[i] = table[levels[i]];
  return out;
}

// [low, high] of a shared scale over many [lo, hi] ranges: from 0 (or the lowest value, if
// below 0) to the highest, so that a map growing from nothing starts dark.
export function sharedRange(los, his) {
  const [low] = extent(los);
  const [, high] = extent(his);
  if (high === undefined) return [undefined, undefined];
  return [Math.min(0, low), high];
}
