"""The stored format: what each cnnviz summary holds and how arrays map onto it (format 2;
format-1 runs still read). Imports neither TensorFlow nor Keras: the callback packs through it,
and the reader and the plugin unpack through it.

- `metadata`: tags, kinds of summary, TensorBoard's summary metadata, `FormatError`.
- `codec`: a blob sequence's JSON header and its 8-bit PNG mosaics.
- `run_header`: what a run logs, written once beside the probe images.
- `maps`: where each map kind's arrays sit in the stored mosaics; resizing stored maps.
- `tensors`: statistics and trust figures as tensors (8-bit statistics).
- `top_examples`: each filter's top-activating examples, a binary payload.
- `event`: one event's summaries; `step_index`: the index a step's predictions carry.
- `layer_names`: a layer named by path or short name.

Format 2 made events of large models small: Grad-CAM maps are stored at their layer's
resolution (their header's `size` is the input's, which readers upsample to), and filter
statistics are 8-bit rows.
"""
