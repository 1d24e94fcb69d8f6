"""`python -m tb_cnnviz`: the `tb-cnnviz` command."""

from tb_cnnviz.cli.main import run

if __name__ == "__main__":
    run()
