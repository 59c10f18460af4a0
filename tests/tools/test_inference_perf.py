"""The inference comparison's models: what each variant holds, and the reason a network's channels
cannot be removed where the suite refuses it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmarks.tools.inference_perf import networks, variants
from methods.masks import prunable_parameters
from methods.networks.parts import ModelParts
from methods.networks.registry import MODELS, model_parts


def _network(model: str):
    (network,) = networks(64, (32, 32), (model,))
    return network


@pytest.mark.parametrize("model", ["small_cnn", "mobilenet_v2", "vit"])
def test_all_four_variants_hold_the_weights_they_say(model):
    models, refused = variants(_network(model))
    assert not refused
    stored = {n: sum(p.numel() for p in prunable_parameters(m).values()) for n, m in models.items()}
    nonzero = {
        n: sum(int((p != 0).sum()) for p in prunable_parameters(m).values())
        for n, m in models.items()
    }
    assert nonzero["unstructured 90% mask"] == pytest.approx(0.1 * stored["dense"], rel=0.05)
    assert stored["50% of weights as channels"] == pytest.approx(0.5 * stored["dense"], rel=0.02)
    assert stored["70% of weights as channels"] == pytest.approx(0.3 * stored["dense"], rel=0.03)


def test_a_network_whose_channels_cannot_be_removed_is_measured_dense_with_the_reason():
    @dataclasses.dataclass(frozen=True)
    class NoOptions:
        pass

    def grouped(options: NoOptions) -> ModelParts:
        """small_cnn with a conv of two groups (channel pruning takes depthwise ones only)."""
        parts = model_parts("small_cnn", {"width": 4})

        def make_encoder() -> torch.nn.Sequential:
            encoder = parts.make_encoder()
            old = encoder[1][0]
            encoder[1][0] = torch.nn.Conv2d(old.in_channels, old.out_channels, 3, 1, 1, groups=2)
            return encoder

        return dataclasses.replace(parts, make_encoder=make_encoder)

    MODELS.register("grouped_cnn", NoOptions)(grouped)
    try:
        network = dataclasses.replace(_network("small_cnn"), model="grouped_cnn", options={})
        models, refused = variants(network)
    finally:
        MODELS.remove("grouped_cnn")
    assert set(models) == {"dense", "unstructured 90% mask"}
    assert set(refused) == {"50% of weights as channels", "70% of weights as channels"}
    assert all("grouped convolutions other than depthwise" in text for text in refused.values())
