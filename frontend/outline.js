// The outline of a probe's object mask (the `object` route: 255 inside the object, 0 outside,
// at the input's size), drawn over its heat map so that a map's peak can be seen on or off it.

import { loadImage, pixels } from "./api.js";

export const OUTLINE_RGB = [255, 255, 255];

// 1 where a pixel is inside the object and a 4-neighbour (or the image's edge) is not.
export function boundary(inside, width, height) {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = y * width + x;
      if (!inside[i]) continue;
      out[i] = x === 0 || y === 0 || x === width - 1 || y === height - 1
        || !inside[i - 1] || !inside[i + 1] || !inside[i - width] || !inside[i + width] ? 1 : 0;
    }
  }
  return out;
}

export async function drawOutline(canvas, params) {
  const source = pixels(await loadImage("object", params));
  const { width, height } = source;
  const inside = new Uint8Array(width * height);
  for (let i = 0; i < inside.length; i += 1) inside[i] = source.data[i * 4] >= 128 ? 1 : 0;
  const edge = boundary(inside, width, height);
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let i = 0; i < edge.length; i += 1) {
    if (edge[i]) image.data.set([...OUTLINE_RGB, 255], i * 4);
  }
  context.putImageData(image, 0, 0);
}
