"""The embedded, procedurally rendered multitask dataset (``dataset=synthetic``)."""

from datasets.synthetic.dataset import build_synthetic

__all__ = ["build_synthetic"]
