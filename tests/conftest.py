"""Suite-wide settings: one torch thread per test process.

`make test` runs two pytest workers on two cores; letting each use two threads makes small-model tests
many times slower from oversubscription.
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
