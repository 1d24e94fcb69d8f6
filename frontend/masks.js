// A segmentation head's predicted masks: one class index per output pixel, stored as 8-bit
// levels over the probe's own [lo, hi] class range (tb_cnnviz/storage/maps.py, MASKS), drawn in
// a fixed colour per class.

import { loadImage, pixels } from "./api.js";
import { greyLevels, paint } from "./colormap.js";

// Ten distinguishable colours (Tableau 10), class k taking colour k mod 10.
export const PALETTE = [
  [78, 121, 167], [242, 142, 43], [225, 87, 89], [118, 183, 178], [89, 161, 79],
  [237, 201, 72], [176, 122, 161], [255, 157, 167], [156, 117, 95], [186, 176, 172],
];

export function classColour(index) {
  return `rgb(${PALETTE[index % PALETTE.length].join(",")})`;
}

// Colour of each of the 256 levels of one probe's mask: the colour of the class it stores.
function levelColours(header, sample) {
  const lo = header.lo[sample][0];
  const span = header.hi[sample][0] - lo;
  const lut = new Uint8Array(256 * 3);
  for (let level = 0; level < 256; level += 1) {
    lut.set(PALETTE[Math.round(lo + (level / 255) * span) % PALETTE.length], level * 3);
  }
  return lut;
}

export async function drawMask(canvas, params, header) {
  const source = pixels(await loadImage("mask", params));
  canvas.width = source.width;
  canvas.height = source.height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(source.width, source.height);
  context.putImageData(paint(image, greyLevels(source), levelColours(header, params.sample)), 0, 0);
}
