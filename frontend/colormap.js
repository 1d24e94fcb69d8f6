// 256-entry colour tables. viridis and inferno use Matt Zucker's polynomial fits of the
// matplotlib maps; jet is the classic piecewise-linear map.

const POLYNOMIALS = {
  viridis: [
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
  ],
  inferno: [
    [0.0002189403691192265, 0.001651004631001012, -0.01948089843709184],
    [0.1065134194856116, 0.5639564367884091, 3.932712388889277],
    [11.60249308247187, -3.972853965665698, -15.9423941062914],
    [-41.70399613139459, 17.43639888205313, 44.35414519872813],
    [77.162935699427, -33.40235894210092, -81.80730925738993],
    [-71.31942824499214, 32.62606426397723, 73.20951985803202],
    [25.13112622477341, -12.24266895238567, -23.07032500287172],
  ],
};

const clamp = (x) => Math.min(1, Math.max(0, x));

function jet(t) {
  return [1.5 - Math.abs(4 * t - 3), 1.5 - Math.abs(4 * t - 2), 1.5 - Math.abs(4 * t - 1)];
}

function polynomial(coefficients) {
  return (t) => [0, 1, 2].map((c) => coefficients.reduceRight((sum, row) => sum * t + row[c], 0));
}

function table(fn) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i += 1) {
    const rgb = fn(i / 255);
    for (let c = 0; c < 3; c += 1) lut[i * 3 + c] = Math.round(clamp(rgb[c]) * 255);
  }
  return lut;
}

export const COLORMAPS = {
  jet: table(jet),
  viridis: table(polynomial(POLYNOMIALS.viridis)),
  inferno: table(polynomial(POLYNOMIALS.inferno)),
};

// Writes colour[level[i]] into an RGBA ImageData, levels given as one byte per pixel.
export function paint(imageData, levels, lut, alpha = 255) {
  const out = imageData.data;
  for (let i = 0; i < levels.length; i += 1) {
    const level = levels[i];
    out[i * 4] = lut[level * 3];
    out[i * 4 + 1] = lut[level * 3 + 1];
    out[i * 4 + 2] = lut[level * 3 + 2];
    out[i * 4 + 3] = alpha;
  }
  return imageData;
}

// Grey level of each pixel of an RGBA ImageData (the red channel of a greyscale PNG).
export function greyLevels(imageData) {
  const levels = new Uint8Array(imageData.width * imageData.height);
  for (let i = 0; i < levels.length; i += 1) levels[i] = imageData.data[i * 4];
  return levels;
}
