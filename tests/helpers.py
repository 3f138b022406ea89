"""Small model builders shared by the tests."""
from torch import nn


def mlp(dims, act=nn.ReLU):
    """``nn.Sequential`` of Linear layers through ``dims`` with ``act`` between them."""
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(act())
    return nn.Sequential(*layers)
