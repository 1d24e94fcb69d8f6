// The tab's views, one module each (view_*.js), and the interface they share, written down
// here once: index.js draws whichever view is selected through it alone, so that a view is
// one module and one entry in VIEWS, and the step bar, comparison, warnings and errors work
// the same in all of them.

import * as activations from "./view_activations.js";
import * as evolution from "./view_evolution.js";
import * as filters from "./view_filters.js";
import * as gradcam from "./view_gradcam.js";
import * as layers from "./view_layers.js";
import * as methods from "./view_methods.js";
import * as trust from "./view_trust.js";

/**
 * One run as the plugin's `runs` route describes it: its name, its logged steps per mode and
 * its run header (the plugin's routes module lists the rest). Names in it are untrusted.
 * @typedef {object} Run
 * @property {string} run  its name
 * @property {{train: number[], eval: number[]}} steps  its logged steps per mode, ascending
 * @property {number} samples  how many probes
 * @property {string[]} layers  the layers whose feature maps are logged
 * @property {string} gradcam_layer
 * @property {Object<string, {output_shape: number[]}>} conv_layers  every conv layer, by path
 */

/**
 * What a view is drawn with, the same for every run a step shows.
 * @typedef {object} ViewContext
 * @property {Object<string, string>} state  the selection, normalised for the data (index.js):
 *   the keys of state.js DEFAULTS, every value a string; state.mode has steps in runs[0]
 * @property {import("./state.js").Store} store  store.update(patch) changes the selection
 * @property {Run[]} runs  the runs shown: the selected one, then the one compared with it, if any
 * @property {HTMLElement} content  where the runs' panels are drawn (the Grad-CAM opacity
 *   slider sets its --heat-opacity while it is dragged)
 * @property {number} deadAt  the dead_fraction from which a filter reads dead (health.js isDead)
 */

/**
 * A view module: what each view_*.js exports (some export more, for their own use elsewhere).
 * @typedef {object} View
 * @property {string} label  its tab's text
 * @property {(ctx: ViewContext) => HTMLElement[]} toolbar  its controls, above the step bar
 *   ([] for none): made again when the layout changes (view, runs, mode or a control's
 *   setting), not at every step, so that a control is not replaced while in use
 * @property {(ctx: ViewContext, run: Run, step: number) => Promise<HTMLElement>} render  the body
 *   of `run`'s panel at `step`, a logged step of ctx.state.mode; what it throws is shown in the
 *   panel instead (an ApiError in the plugin's words)
 * @property {(ctx: ViewContext, run: Run, step: number) => void} [prefetch]  asks ahead for what
 *   render will need at `step`, a neighbour of the step shown, and ignores failures
 */

/** @type {Object<string, View>} the views by state.view, in the order of their tabs */
export const VIEWS = { gradcam, methods, activations, filters, evolution, layers, trust };
