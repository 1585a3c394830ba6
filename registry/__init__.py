"""A Git-native model registry: model cards in git, weights in DVC remotes, change through pull
requests."""

__version__ = "0.1.0"
