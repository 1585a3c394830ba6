"""Standardise: (x - mean) / std per feature, with fixed values measured on the training split.

A custom layer: one torch.nn.Module whose configuration is the pydantic `Config` below; a structure
uses it as `type: standardise` with `args: {mean: [...], std: [...]}`.
"""

import torch
from pydantic import BaseModel, Field
from torch import nn

OUTPUT_SHAPE = "same"  # the output has the input's shape (lets the static check follow shapes)


class Config(BaseModel):
    mean: list[float] = Field(description="mean of each feature on the training split")
    std: list[float] = Field(description="standard deviation of each feature on the training split")


class Standardise(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.register_buffer("mean", torch.tensor(config.mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(config.std, dtype=torch.float32))

    def forward(self, x):
        return (x - self.mean) / self.std
