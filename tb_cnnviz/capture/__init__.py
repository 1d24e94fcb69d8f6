"""The capture side: the Keras callback (`callback.CNNViz`) and what it builds on. `options`
checks every option once, `plan` decides what to log for a model, `schedule` says when an
event is due, `probe` computes an event in one compiled pass, `run_state` keeps the logdir's
record of the run, and `writer` appends events to the run's own event file."""
