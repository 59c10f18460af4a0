"""The contract a registered model's ``ModelParts`` keep, checked when a sweep starts, so a new
backbone that breaks it fails with the rule it breaks instead of a tensor-size error in a cell.

1. ``make_encoder()`` is an ``nn.Sequential``; ``stage_ends`` rise strictly and the last is its
   length; there is one ``stage_channels`` entry per stage.
2. Stage s (``encoder[stage_ends[s-1]:stage_ends[s]]``) outputs ``stage_channels[s]`` channels.
3. ``make_head(c_in, c_out)`` maps the last stage's output to ``c_out`` channels (the network
   resizes head outputs to the label size itself).
4. The stage rule, for methods that read inside a stage (MTAN): ``split_stage(stage)`` returns
   (body, last block) with ``last(body(x)) == stage(x)``'s shape, and the last block keeps its
   input's height and width and reads all of its channels: MTAN's attention mask is computed from
   ``body(x)`` and multiplied with ``last(body(x))``.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.networks.attention import input_channels
from methods.networks.parts import ModelParts, cut_stages

PROBE_SIZE = 64  # height and width of the probe image: divisible by the usual total stride


class ModelContractError(ValueError):
    """A model's parts break a rule of the contract (named in the message)."""


def check_model_parts(name: str, parts: ModelParts, stage_rule: bool = False) -> None:
    """Raise ``ModelContractError`` naming the rule ``parts`` of model ``name`` break; with
    ``stage_rule``, rule 4 is checked too (a method that reads inside stages will run on it)."""

    def broken(rule: str) -> ModelContractError:
        return ModelContractError(
            f"model={name} breaks the model contract: {rule} (methods/networks/contract.py "
            "lists the rules; docs/extending.md, 'A model')"
        )

    encoder = parts.make_encoder()
    ends = tuple(parts.stage_ends)
    if not isinstance(encoder, nn.Sequential):
        raise broken(f"rule 1: make_encoder() must return an nn.Sequential, got {type(encoder)}")
    if any(b <= a for a, b in zip((0, *ends), ends, strict=False)) or ends[-1] != len(encoder):
        raise broken(
            f"rule 1: stage_ends {ends} must rise strictly and end at the encoder's length "
            f"{len(encoder)}"
        )
    if len(parts.stage_channels) != len(ends):
        raise broken(f"rule 1: {len(parts.stage_channels)} stage_channels for {len(ends)} stages")
    encoder.eval()
    with torch.no_grad():
        x = torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE)
        for s, (stage, channels) in enumerate(
            zip(cut_stages(encoder, ends), parts.stage_channels, strict=True)
        ):
            if stage_rule:
                _check_stage_split(s, stage, parts, x, broken)
            x = stage(x)
            if x.shape[1] != channels:
                raise broken(
                    f"rule 2: stage {s} outputs {x.shape[1]} channels, stage_channels says "
                    f"{channels}"
                )
        head = parts.make_head(parts.out_channels, 2).eval()
        out = head(x)
        if out.dim() != 4 or out.shape[1] != 2:
            raise broken(
                f"rule 3: make_head(c_in, 2) gave shape {tuple(out.shape)}, not (N, 2, H, W)"
            )


def _check_stage_split(s: int, stage: nn.Sequential, parts: ModelParts, x, broken) -> None:
    body, last = parts.split_stage(stage)
    before = body(x)
    after = last(before)
    whole = stage(x).shape
    if after.shape != whole:
        raise broken(
            f"rule 4 (MTAN's stage rule): split_stage of stage {s} gives {tuple(after.shape)}, "
            f"the stage itself {tuple(whole)}"
        )
    try:
        reads = input_channels(last)
    except ValueError:
        reads = None
    if reads != before.shape[1]:
        read = "nothing it names" if reads is None else f"{reads} channels"
        raise broken(
            f"rule 4 (MTAN's stage rule): the last block of stage {s} must start with a "
            f"convolution, linear layer or layer norm reading all {before.shape[1]} channels of "
            f"its input, it reads {read}"
        )
    if after.shape[-2:] != before.shape[-2:]:
        raise broken(
            f"rule 4 (MTAN's stage rule): the last block of stage {s} changes the resolution "
            f"{tuple(before.shape[-2:])} -> {tuple(after.shape[-2:])}; MTAN multiplies a mask "
            "computed before that block with its output, so end each stage with a block that "
            "keeps height and width (put the stride in an earlier block, or set split_stage)"
        )
