// Requests to the plugin's routes, relative to the iframe's base URL data/plugin/cnnviz/.
// Immutable answers (one step's data, images) are cached by URL, so scrubbing back is free.
// A step takes one entry for its event and one per probe image: 4000 entries hold a view's
// full pass over ~400 steps of 8 probes. A pass over more steps than fit evicts each step
// before a scrub comes back to it (bench/README.md, frontend_fps).

import { Recent } from "./cache.js";

const cache = new Recent(4000);
let scratch;  // one canvas to read pixels back: a new canvas and context per image cost more

export function url(route, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const text = query.toString();
  return `./${route}${text ? `?${text}` : ""}`;
}

export class ApiError extends Error {}

// What a panel or a card section says when drawing it failed: the plugin's own words for an
// error it answered, the kind of error too for a fault of the tab's.
export function errorText(error) {
  return error instanceof ApiError ? error.message : `${error.name}: ${error.message}`;
}

async function fetchJSON(address) {
  const response = await fetch(address);
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`${response.status} ${response.statusText} from ${address}`);
  }
  if (!response.ok) throw new ApiError(body.error || `${response.status} ${response.statusText}`);
  return body;
}

// A summary header from the `event` answer; a damaged summary comes as {error} instead.
export function part(header) {
  if (header?.error) throw new ApiError(header.error);
  return header;
}

export function getJSON(route, params, { fresh = false } = {}) {
  const address = url(route, params);
  return fresh ? fetchJSON(address) : cache.get(address, () => fetchJSON(address));
}

export function loadImage(route, params) {
  const address = url(route, params);
  return cache.get(address, () => new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = async () => {  // an <img> cannot read the JSON reason of an error: fetch it
      const response = await fetch(address).catch(() => null);
      const body = await response?.json().catch(() => null);
      reject(new ApiError(body?.error || `could not load ${address}`));
    };
    image.src = address;
  }));
}

export function pixels(image) {
  scratch ||= document.createElement("canvas").getContext("2d", { willReadFrequently: true });
  scratch.canvas.width = image.naturalWidth;  // also clears it
  scratch.canvas.height = image.naturalHeight;
  scratch.drawImage(image, 0, 0);
  return scratch.getImageData(0, 0, image.naturalWidth, image.naturalHeight);
}

// A route's answer over every step, asked again only when the run has logged other steps since
// (a run still training): moving through steps costs no request.
const answers = new Recent(32);

export function overSteps(route, params, steps) {
  const key = JSON.stringify([route, params, steps.length, steps[steps.length - 1]]);
  return answers.get(key, () => getJSON(route, params, { fresh: true }));
}
