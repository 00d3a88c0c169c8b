import os

import pytest
import torch

# Model hubs are never reachable from tests; downloads go through local fixtures only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
