"""The cnnviz dashboard's static files, installed as the package `tb_cnnviz.frontend`."""
