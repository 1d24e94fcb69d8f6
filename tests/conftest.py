import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from tb_cnnviz.datasets import shapes  # noqa: E402


@pytest.fixture(scope="session")
def data():
    """(images, labels, masks): a small synthetic shapes set, 32x32 RGB, 4 classes."""
    return shapes(96, size=32, seed=3)
