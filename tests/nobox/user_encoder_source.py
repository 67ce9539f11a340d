"""A user encoder for the no-box tests, as the source of a ``file.py:attr`` module the user names."""

FRAME_ENCODER_SOURCE = """
import torch
from torch import nn


class FrameEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.frame = nn.Linear(150, 16)

    def forward(self, x):
        n, c, t, v, m = x.shape
        return torch.tanh(self.frame(x.permute(0, 2, 1, 3, 4).reshape(n, t, c * v * m))).mean(1)
"""
