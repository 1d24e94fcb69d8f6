// Feature maps and filters arrive as one PNG per item: n maps tiled on a near-square grid
// (see tb_cnnviz/storage/codec.py). These helpers find a tile and redraw tiles in colour.

import { COLORMAPS, paint } from "./colormap.js";

export function gridShape(n) {
  const cols = Math.max(1, Math.ceil(Math.sqrt(n)));
  return [Math.ceil(n / cols), cols];
}

// Index of the tile under an offset (in canvas pixels), or -1 outside every tile; `gap` is
// the spacing drawn between tiles.
export function tileAt(x, y, header, gap = 0) {
  const [, n, h, w] = header.shape;
  const [, cols] = gridShape(n);
  const col = Math.floor(x / (w + gap));
  const row = Math.floor(y / (h + gap));
  const inside = x - col * (w + gap) < w && y - row * (h + gap) < h;
  const index = row * cols + col;
  return x >= 0 && y >= 0 && col < cols && inside && index < n ? index : -1;
}

export function tileOrigin(index, header, gap = 0) {
  const [, n, h, w] = header.shape;
  const [, cols] = gridShape(n);
  return [(index % cols) * (w + gap), Math.floor(index / cols) * (h + gap)];
}

// Draws a mosaic image on a canvas with `gap` transparent pixels between its tiles.
export function drawSpaced(canvas, image, header, gap) {
  const [, n, h, w] = header.shape;
  const [rows, cols] = gridShape(n);
  canvas.width = cols * (w + gap) - gap;
  canvas.height = rows * (h + gap) - gap;
  const context = canvas.getContext("2d");
  for (let tile = 0; tile < n; tile += 1) {
    const [sx, sy] = tileOrigin(tile, header);
    const [dx, dy] = tileOrigin(tile, header, gap);
    context.drawImage(image, sx, sy, w, h, dx, dy, w, h);
  }
}

// Grey levels of a mosaic, each tile rescaled from its own range [lo, hi] to the shared
// range [low, high] (per-layer normalisation); identity when low/high are undefined.
export function rescaled(levels, width, header, item, low, high) {
  if (low === undefined) return levels;
  const [, n, h, w] = header.shape;
  const out = new Uint8Array(levels.length);
  for (let tile = 0; tile < n; tile += 1) {
    const lo = header.lo[item][tile];
    const span = header.hi[item][tile] - lo;
    const [x0, y0] = tileOrigin(tile, header);
    for (let y = 0; y < h; y += 1) {
      for (let x = 0; x < w; x += 1) {
        const i = (y0 + y) * width + x0 + x;
        const value = lo + (levels[i] / 255) * span;
        out[i] = high > low ? Math.round(((value - low) / (high - low)) * 255) : 0;
      }
    }
  }
  return out;
}

// Grey levels of a mosaic with the tiles `flat[tile]` set to level 0 (maps drawn flat).
export function flattened(levels, width, header, flat) {
  if (!flat.some(Boolean)) return levels;
  const [, , h, w] = header.shape;
  const out = levels.slice();
  flat.forEach((isFlat, tile) => {
    if (!isFlat) return;
    const [x0, y0] = tileOrigin(tile, header);
    for (let y = 0; y < h; y += 1) out.fill(0, (y0 + y) * width + x0, (y0 + y) * width + x0 + w);
  });
  return out;
}

export function drawLevels(canvas, source, levels, lut = COLORMAPS.viridis) {
  canvas.width = source.width;
  canvas.height = source.height;
  const context = canvas.getContext("2d");
  context.putImageData(paint(context.createImageData(source.width, source.height), levels, lut), 0, 0);
}
