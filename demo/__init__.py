"""The tb-cnnviz demo: a VGG-style CNN learns synthetic shapes while CNNViz logs it."""
