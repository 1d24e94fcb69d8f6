"""Reading what CNNViz logged: `reader.read_run` over a run directory's event files, and the
lookups that reader and the TensorBoard plugin share (`lookups`, over any `lookups.Source`):
one step's maps, examples and statistics, and series over steps (`series`). Imports neither
TensorFlow nor Keras."""
