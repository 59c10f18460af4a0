"""Which channels of a network must be removed together, what removing them costs in weights,
and the surgery that removes them, so a channel-pruned network is physically smaller.

Torch-Pruning's dependency graph (``torch_pruning``) couples every tensor dimension that must
shrink together: a conv's output channels, its BatchNorm, the next convs' inputs, the branches
of a residual add or of a summed ASPP, every head that reads the encoder. One such coupling is a
``ChannelGroup``, named by its root conv. A group whose channels reach a task's output (the
prediction convs) has no consumer and is never pruned.

Multi-head attention (a module with ``qkv`` and ``proj`` linear layers and a ``heads`` count,
the layout Torch-Pruning's ``num_heads`` option and timm's ViT use) is grouped by the suite, not
traced: its channels are whole heads, a head spanning its query, key and value rows of ``qkv``
and its input columns of ``proj``, removed here (``remove_heads``) as Torch-Pruning's
``prune_num_heads`` does. A transformer's token width (the residual stream, which every block,
the patch embedding, its position embedding and the layer norms share) is one traced group, as
in Torch-Pruning's ViT examples, which prune the embedding dimension too.

Weights are counted the way sparsity is (conv and linear weights only), exactly: a module keeps
(outputs left) x (inputs left) x (kernel size) weights; ``ChannelGraph.prune`` checks that the
surgery removed exactly what was counted, so a network Torch-Pruning cannot handle fails loudly
instead of reporting a wrong sparsity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from methods.masks import DENSE_COUNTS_ATTRIBUTE, PRUNABLE_MODULES, dense_weight_counts, owners_of

OUTPUTS, INPUTS = 0, 1  # the weight dimension a group's channels index


@dataclass(frozen=True)
class ChannelSlice:
    """Where a group's channels sit in one prunable weight: ``dim`` (outputs or inputs), and
    channel j at positions ``positions[j * per_channel:(j + 1) * per_channel]`` of it."""

    weight: str
    dim: int
    positions: tuple[int, ...]
    per_channel: int

    def channel_sums(self, values: torch.Tensor, size: int) -> torch.Tensor:
        """Per-channel sums of ``values`` (shaped like the weight) over this slice."""
        index = torch.tensor(self.positions, device=values.device)
        picked = values.index_select(self.dim, index).transpose(0, self.dim)
        return picked.reshape(size, self.per_channel, -1).sum(dim=(1, 2))


@dataclass(frozen=True)
class ChannelGroup:
    name: str  # the root module's name
    owner: str  # ``shared`` or the task whose head it is in
    size: int  # channels
    slices: tuple[ChannelSlice, ...]

    def channel_scores(self, weight_scores: dict[str, torch.Tensor]) -> torch.Tensor:
        """A channel's score: the sum of its weights' scores over every weight it spans."""
        total = torch.zeros(self.size, dtype=torch.float64)
        for piece in self.slices:
            if piece.weight in weight_scores:
                sums = piece.channel_sums(weight_scores[piece.weight].detach(), self.size)
                total += sums.double().cpu()
        return total


class ChannelGraph:
    """The prunable channel groups of ``model`` (traced once on ``example``, in eval mode so the
    trace moves no BatchNorm statistics)."""

    def __init__(self, model: nn.Module, example: torch.Tensor):
        if getattr(model, DENSE_COUNTS_ATTRIBUTE, None) is not None:
            raise ValueError("this network's channels were already removed; prune it only once")
        self.model = model
        self.example = example
        self._module_names = {module: name for name, module in model.named_modules()}
        self._shapes = {n: _weight_shape(model, n) for n in dense_weight_counts(model)}
        was_training = model.training
        model.eval()
        try:
            self._graph = tp.DependencyGraph().build_dependency(
                model, example, unwrapped_parameters=_channel_maps(model), verbose=False
            )
        finally:
            model.train(was_training)
        owners = owners_of(model, self._shapes)
        self._attention = {
            name: module for name, module in model.named_modules() if is_attention(module)
        }
        self.groups = [
            group
            for group in (self._describe(g, owners) for g in self._all_groups())
            if group is not None
        ]
        self.groups += [head_group(n, m, owners) for n, m in self._attention.items()]
        self._check_slices()

    def _check_slices(self) -> None:
        """Every group's channels index whole, equal slices of each weight it spans; otherwise
        Torch-Pruning coupled them through an operation the suite cannot follow (a reshape the
        suite does not know, as attention's heads would be without ``is_attention``): stop with
        that reason, not a shape error later."""
        for group in self.groups:
            for piece in group.slices:
                if piece.per_channel == 0 or len(piece.positions) != piece.per_channel * group.size:
                    raise RuntimeError(
                        f"channel pruning of {type(self.model).__name__}: Torch-Pruning does not "
                        f"handle this network's couplings ({group.size} channels of {group.name} "
                        f"reach {len(piece.positions)} positions of {piece.weight}; see "
                        "docs/methods.md, structured pruning)"
                    )

    def _all_groups(self):
        return self._graph.get_all_groups(root_module_types=PRUNABLE_MODULES)

    def _traced_by_the_suite(self, module: nn.Module) -> bool:
        """An attention's ``qkv``: its channels are the suite's head group, not Torch-Pruning's."""
        return any(module is attention.qkv for attention in self._attention.values())

    def _describe(self, group, owners: dict[str, str]) -> ChannelGroup | None:
        root = group[0].dep.target.module
        if self._traced_by_the_suite(root):
            return None
        size = len(group[0].idxs)
        slices = []
        for item in group:
            module = item.dep.target.module
            if not isinstance(module, PRUNABLE_MODULES):
                continue
            handler = item.dep.handler
            if is_depthwise(module) or self._graph.is_out_channel_pruning_fn(handler):
                dim = OUTPUTS  # a depthwise conv's one input per output goes with its output
            elif self._graph.is_in_channel_pruning_fn(handler):
                dim = INPUTS
            else:
                continue
            weight = f"{self._module_names[module]}.weight"
            if any(piece.weight == weight and piece.dim == dim for piece in slices):
                continue  # a depthwise conv reached as both consumer and producer
            per_channel = len(item.idxs) // size
            slices.append(ChannelSlice(weight, dim, tuple(int(i) for i in item.idxs), per_channel))
        if not any(piece.dim == INPUTS for piece in slices):
            return None  # the channels are an output of the network: never pruned
        name = self._module_names[root]
        return ChannelGroup(name, owners[f"{name}.weight"], size, tuple(slices))

    def kept_weights(self, removed: dict[str, int]) -> int:
        """Prunable weights left when ``removed[group]`` channels of each group are removed."""
        lost: dict[tuple[str, int], int] = {}
        for group in self.groups:
            count = removed.get(group.name, 0)
            for piece in group.slices:
                key = (piece.weight, piece.dim)
                lost[key] = lost.get(key, 0) + count * piece.per_channel
        kept = 0
        for weight, shape in self._shapes.items():
            outputs = shape[0] - lost.get((weight, OUTPUTS), 0)
            inputs = shape[1] - lost.get((weight, INPUTS), 0)
            kept += outputs * inputs * int(torch.Size(shape[2:]).numel())
        return kept

    def total_weights(self) -> int:
        return self.kept_weights({})

    def prune(self, removed: dict[str, list[int]]) -> None:
        """Remove channel indices ``removed[group]`` of each group from the model, in place;
        the model then records its unpruned weight counts (``DENSE_COUNTS_ATTRIBUTE``)."""
        expected = self.kept_weights({name: len(idxs) for name, idxs in removed.items()})
        dense_counts = dense_weight_counts(self.model)
        for group in self._all_groups():  # regrouped after each removal, as Torch-Pruning does
            root = group[0].dep.target.module
            idxs = removed.get(self._module_names[root], [])
            if idxs and not self._traced_by_the_suite(root):
                handler = group[0].dep.handler
                self._graph.get_pruning_group(root, handler, sorted(idxs)).prune()
        for name, attention in self._attention.items():
            remove_heads(attention, removed.get(f"{name}.qkv", []))
        left = sum(dense_weight_counts(self.model).values())
        if left != expected:
            raise RuntimeError(
                f"channel pruning of {type(self.model).__name__} left {left} prunable weights "
                f"where its dependency groups predict {expected}: Torch-Pruning does not handle "
                "this network's couplings (see docs/methods.md, structured pruning)"
            )
        self._check_forward()
        setattr(self.model, DENSE_COUNTS_ATTRIBUTE, dense_counts)

    def _check_forward(self) -> None:
        """The pruned network still runs on the example: a coupling Torch-Pruning missed can
        leave the weight count right and the shapes wrong (NDDR-CNN's concatenation)."""
        was_training = self.model.training
        try:
            with torch.no_grad():
                self.model.eval()(self.example)
        except RuntimeError as error:
            raise RuntimeError(
                f"channel pruning of {type(self.model).__name__} broke its forward pass "
                f"({str(error)[:200]}): Torch-Pruning does not handle this network's couplings "
                "(see docs/methods.md, structured pruning)"
            ) from None
        finally:
            self.model.train(was_training)


def is_depthwise(module: nn.Module) -> bool:
    """A depthwise conv (MobileNet's): one group per channel, as many outputs as inputs, so
    removing a channel removes one output filter of one input."""
    return (
        isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d)
        and module.groups > 1
        and module.groups == module.in_channels == module.out_channels
    )


def _channel_maps(model: nn.Module) -> list[tuple[nn.Parameter, int]]:
    """Parameters outside any layer shaped (1, channels, ...), as a ViT's position embedding
    added to the (batch, channels, height, width) map: Torch-Pruning removes their channels on
    dim 1 (left alone, it would take the last dimension)."""
    layers = (*PRUNABLE_MODULES, nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    return [
        (parameter, 1)
        for module in model.modules()
        if not isinstance(module, layers)
        for parameter in module.parameters(recurse=False)
        if parameter.dim() >= 2 and parameter.shape[0] == 1
    ]


def is_attention(module: nn.Module) -> bool:
    """Multi-head attention as the suite prunes it: ``qkv`` (queries, keys and values stacked,
    each head's columns contiguous within them) and ``proj`` linear layers, and ``heads``."""
    return (
        isinstance(getattr(module, "qkv", None), nn.Linear)
        and isinstance(getattr(module, "proj", None), nn.Linear)
        and isinstance(getattr(module, "heads", None), int)
    )


def _head_rows(attention: nn.Module, heads: list[int]) -> list[int]:
    """The rows of ``qkv`` that ``heads`` own, head by head: its query, key and value rows."""
    inner = attention.qkv.out_features // 3
    width = inner // attention.heads
    return [part * inner + h * width + j for h in heads for part in range(3) for j in range(width)]


def head_group(name: str, attention: nn.Module, owners: dict[str, str]) -> ChannelGroup:
    """The heads of one attention module as a channel group named by its ``qkv``."""
    heads = attention.heads
    width = attention.qkv.out_features // 3 // heads
    rows = ChannelSlice(
        f"{name}.qkv.weight", OUTPUTS, tuple(_head_rows(attention, list(range(heads)))), 3 * width
    )
    columns = ChannelSlice(f"{name}.proj.weight", INPUTS, tuple(range(heads * width)), width)
    return ChannelGroup(f"{name}.qkv", owners[f"{name}.qkv.weight"], heads, (rows, columns))


def remove_heads(attention: nn.Module, heads: list[int]) -> None:
    """Remove ``heads`` from an attention module in place: their ``qkv`` rows (weight and bias),
    their ``proj`` input columns, and the count."""
    if not heads:
        return
    kept = [h for h in range(attention.heads) if h not in set(heads)]
    width = attention.qkv.out_features // 3 // attention.heads
    rows = torch.tensor(_head_rows(attention, kept))
    columns = torch.tensor([h * width + j for h in kept for j in range(width)])
    qkv, proj = attention.qkv, attention.proj
    with torch.no_grad():
        qkv.weight = nn.Parameter(qkv.weight[rows].clone())
        if qkv.bias is not None:
            qkv.bias = nn.Parameter(qkv.bias[rows].clone())
        proj.weight = nn.Parameter(proj.weight[:, columns].clone())
    qkv.out_features, proj.in_features = len(rows), len(columns)
    attention.heads = len(kept)


def _weight_shape(model: nn.Module, weight: str) -> tuple[int, ...]:
    module = model.get_submodule(weight.rsplit(".", 1)[0])
    grouped = isinstance(module, nn.Conv2d | nn.Conv1d | nn.Conv3d) and module.groups != 1
    if grouped and not is_depthwise(module):
        raise ValueError(
            f"{weight}: grouped convolutions other than depthwise ones (groups = in = out "
            "channels) are not supported by channel pruning"
        )
    if isinstance(module, nn.ConvTranspose2d):
        raise ValueError(f"{weight}: transposed convolutions are not supported by channel pruning")
    return tuple(module.weight.shape)


def shrink_to_shapes(
    model: nn.Module, shapes: dict[str, torch.Size], example: torch.Tensor
) -> None:
    """Remove channels from a freshly built ``model`` until its tensors have ``shapes`` (a
    channel-pruned network's state dict), in place. Which channels go does not matter: the
    pruned network's weights are loaded next. A model whose shapes already match is left alone."""
    own = {name: tensor.shape for name, tensor in model.state_dict().items()}
    if all(own.get(name, shape) == shape for name, shape in shapes.items()):
        return
    with torch.enable_grad():  # Torch-Pruning traces through autograd
        graph = ChannelGraph(model, example)
    removed = {}
    for group in graph.groups:
        root = next(p for p in group.slices if p.weight == f"{group.name}.weight")
        kept = shapes.get(root.weight, (group.size * root.per_channel,))[0] // root.per_channel
        if kept < group.size:
            removed[group.name] = list(range(group.size - kept))
    graph.prune(removed)
