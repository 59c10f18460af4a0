"""The scratch controls of Liu et al. (Rethinking the Value of Network Pruning, ICLR 2019; code:
Eric-mingjie/rethinking-network-pruning). Once a method that starts from the trained dense model
has finished, its pruned network (the same mask, or the same smaller architecture) is
re-initialised and trained from scratch under the protocol's own schedule and learning rate:

- ``scratch_e``: as many steps as dense training (their Scratch-E: the same epochs);
- ``scratch_b``: as many training FLOPs as the method's whole pipeline (dense training, then the
  method's own steps), at most ``SCRATCH_B_MAX_FACTOR`` times dense's steps (their rule: "when the
  pruned model saves more than 2x FLOPs, we just double the number of epochs"). FLOPs count the
  weights the masks keep (``benchmarks.training.cost``), so at high unstructured sparsity the cap
  is what binds.

Departures: Liu et al. match Scratch-B to the large model's training alone; here the method's
fine-tuning counts too, as the issue that asked for the controls defines it. The re-drawn weights
are the network's own initialisation of the unpruned network, cut to the pruned shapes (the
first channels of each tensor: its values are i.i.d. draws, so which ones does not matter);
Liu et al. initialise the smaller network itself, whose fan-in-scaled initialisation is a little
wider. The row's training budget counts everything that produced it: dense, the method and the
retraining (its own steps are ``budget/scratch_steps``).
"""

from __future__ import annotations

import math

import torch

SCRATCH_B_MAX_FACTOR = 2.0


def scratch_steps(control: str, dense_steps: int, pipeline_flops: float, step_flops: float) -> int:
    """Training steps of the scratch control ``control`` (``scratch_e`` or ``scratch_b``)."""
    if control == "scratch_e":
        return dense_steps
    if not math.isfinite(pipeline_flops):
        raise ValueError(
            "scratch_b matches the training FLOPs of the method's pipeline, but its dense run "
            "logged none (it predates cost logging): rerun the dense cell with rerun=stale"
        )
    return min(math.ceil(pipeline_flops / step_flops), int(SCRATCH_B_MAX_FACTOR * dense_steps))


def cut_to_shapes(
    fresh: dict[str, torch.Tensor], trained: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``fresh`` (an initial draw of the unpruned network) with ``trained``'s tensor shapes: a
    channel-pruned tensor keeps the leading entries of each dimension."""
    return {
        name: fresh[name][tuple(slice(0, n) for n in tensor.shape)].clone()
        for name, tensor in trained.items()
    }
