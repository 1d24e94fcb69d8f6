"""`tb-cnnviz`, the command line (`python -m tb_cnnviz` the same): `explain` logs an eval event of
a saved model, `replay` a train event per checkpoint of a training already run, `serve` starts
TensorBoard on a logdir. `main` reads the arguments, `commands` does the work, `images` and
`models` read the inputs; bad input is a `CommandError`, told in one line."""
