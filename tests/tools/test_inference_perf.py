"""The inference comparison's models: what each variant holds, and the reason a network's channels
cannot be removed where the suite refuses it."""

from __future__ import annotations

import pytest

from benchmarks.tools.inference_perf import networks, variants
from methods.masks import prunable_parameters


def _network(model: str):
    (network,) = networks(64, (32, 32), (model,))
    return network


@pytest.mark.parametrize("model", ["small_cnn", "mobilenet_v2"])
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


def test_the_transformers_channel_removal_is_refused_with_the_reason():
    models, refused = variants(_network("vit"))
    reason = "Torch-Pruning does not handle this network's couplings"
    assert set(models) == {"dense", "unstructured 90% mask"}
    assert set(refused) == {"50% of weights as channels", "70% of weights as channels"}
    assert all(reason in text for text in refused.values())
