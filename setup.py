from setuptools import find_packages, setup

setup(
    name="tb-cnnviz",
    version="0.1.0",
    description="See inside convolutional networks while they train, in TensorBoard",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tb_cnnviz", "tb_cnnviz.*"]) + ["tb_cnnviz.frontend"],
    package_dir={"tb_cnnviz.frontend": "frontend"},
    package_data={"tb_cnnviz.frontend": ["*.js", "*.css"]},
    entry_points={"tensorboard_plugins": ["cnnviz = tb_cnnviz.plugin.loader:CNNVizLoader"],
                  "console_scripts": ["tb-cnnviz = tb_cnnviz.cli.main:run"]},
    python_requires=">=3.10",
    # A Keras backend comes as an extra: [tensorflow], [jax] or [torch] (docs/guide/backends.md).
    install_requires=[
        "keras>=3.6",
        "tensorboard>=2.16",
        # CRC-32C of the event files' records in C (backend/files.py): TensorBoard's own is pure Python
        "google-crc32c",
        "numpy",
        "pillow",
        "werkzeug",
        # ISA-L deflate for the PNGs (faster than zlib: bench/README.md), where isal publishes wheels
        # (CPython on 64-bit x86 and ARM); codec.py uses zlib wherever it is not installed.
        "isal; platform_python_implementation == 'CPython' and (platform_machine == 'x86_64'"
        " or platform_machine == 'AMD64' or platform_machine == 'aarch64' or platform_machine == 'arm64')",
    ],
    # scikit-image: photographs shipped in the package (skimage.data) as real probe images;
    # the three backends: the suite runs on each (.ci/run);
    # import-linter: the import contracts between tb_cnnviz's packages (.importlinter);
    # mkdocs-material: the documentation site (mkdocs.yml), built in CI with --strict.
    extras_require={
        "tensorflow": ["tensorflow>=2.16"],
        "jax": ["jax>=0.4.30"],
        "torch": ["torch>=2.1"],
        "test": ["pytest", "playwright", "scikit-image", "scipy", "import-linter", "tree-sitter", "tf-keras-vis",
                 "tree-sitter-javascript", "tensorflow>=2.16", "jax>=0.4.30", "torch>=2.1", "mkdocs-material"],
    },
    license="Apache-2.0",
)
