"""Explanation methods and whether to trust them. Class activation maps (`cam`: one template,
each method its channel weights; `gradcam`: the public functions), the ranking of top-activating
examples (`ranking`), deletion and insertion curves (`curves`), the trust figures an event stores
(`trust`), the cascading randomisation test (`sanity`) and feature visualisation
(`feature_vis`). NumPy and keras.ops; what depends on the backend comes through `backend`."""
