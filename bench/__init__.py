"""tb-cnnviz's benches: run each as a module from the repository root, `python3 -m bench.NAME`
(bench/README.md), or all of them with `python3 -m bench.run_all`."""
