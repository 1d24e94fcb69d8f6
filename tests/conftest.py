import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from tb_cnnviz.datasets import shapes  # noqa: E402


@pytest.fixture(scope="session")
def data():
    """(images, labels, masks): a small synthetic shapes set, 32x32 RGB, 4 classes."""
    return shapes(96, size=32, seed=3)


@pytest.fixture(scope="session")
def trained():
    """The demo's model trained once per test session (`helpers.train_shapes_model`: over seeds
    it learns the shapes and its maps pass deletion, insertion and the sanity check,
    bench/trust_seeds.py). Tests must not change its weights (sanity_check works on a copy)."""
    from tests.helpers import train_shapes_model

    return train_shapes_model(seed=0)
