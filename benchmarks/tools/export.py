"""``python -m benchmarks.export RUN_ID --format onnx|torch_export|state_dict --out PATH``: a run's
compressed model in a format another program can load, checked against the PyTorch outputs.

The model is the run's logged model (``runs:/RUN_ID/model``: weights read with
``weights_only=True``, the network rebuilt by the registries), so a channel-pruned network is
written at its smaller size. ``onnx`` (needs the ``export`` extra: onnx, onnxscript;
checked with onnxruntime when it is installed) and ``torch_export`` (``torch.export``, a
``.pt2`` file) keep the batch size dynamic and fix the resolution to the run's images; the
outputs are named after the tasks. ``state_dict`` writes ``torch.save(model.state_dict())`` (a
channel-pruned network has other shapes than ``hard_sharing_network`` makes: load it with
``benchmarks.cells.logged_network.load_logged_network`` or one of the graph formats). The largest
absolute difference between the exported and the PyTorch outputs on a random batch is printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.cells.logged_network import load_logged_network
from benchmarks.reporting.staged import staged_files
from benchmarks.tracking.arguments import (
    DEFAULT_URI,
    add_store_arguments,
    given_store,
    known_stores,
)
from benchmarks.tracking.models import DamagedModelError, NoLoggedModelError
from benchmarks.tracking.store import open_run

FORMATS = ("onnx", "torch_export", "state_dict")
CHECK_BATCH = 2  # a batch of 1 would fix the batch dimension of the traced graph


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.export",
        description="Write a run's model as ONNX, a torch.export program or a state dict.",
    )
    parser.add_argument("run_id", help="the MLflow run id (the leaderboard CSV's run_ids column)")
    parser.add_argument("--format", choices=FORMATS, required=True, help="what to write")
    parser.add_argument("--out", type=Path, required=True, help="file to write")
    parser.add_argument(
        "--allow-unfinished",
        action="store_true",
        help="also export a run that did not finish (KILLED, FAILED, RUNNING): its model may not "
        "be the one its metrics describe",
    )
    add_store_arguments(parser)
    return parser.parse_args(argv)


def load_run_model(run_id: str, tracking_uri: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The run's network in eval mode and the image shape (C, H, W) of its input example."""
    try:
        return load_logged_network(tracking_uri, run_id)
    except NoLoggedModelError as error:
        raise SystemExit(
            f"no MLflow model for run {run_id} in {tracking_uri} ({error}); runs logged before "
            "models were logged have none: rerun the cell, or check --tracking-uri"
        ) from None
    except DamagedModelError as error:
        raise SystemExit(
            f"the model files of run {run_id} in {tracking_uri} cannot be read ({error}): they "
            "are damaged; rerun the cell (python -m benchmarks.run rerun=...) for a new model"
        ) from None


def check_output(out: Path) -> None:
    """Fail before any work when ``out`` cannot be written (a folder, a read-only place)."""
    if out.is_dir():
        raise SystemExit(f"--out {out} is a folder; give a file name, e.g. {out / 'model.onnx'}")
    folder = next((p for p in (out.parent, *out.parent.parents) if p.exists()), None)
    if folder is None or not folder.is_dir() or not os.access(folder, os.W_OK):
        raise SystemExit(f"--out {out}: cannot create files under {folder}; choose another path")


def store_of_run(run_id: str, given: str | None) -> str:
    """The store to read ``run_id`` from: the one named, else whichever of the stores this
    checkout writes by default (the default sweep's, the smoke experiment's) holds the run.
    Nothing is created."""
    if given is not None:
        return given
    for uri in known_stores():
        try:
            open_run(uri, run_id)
        except LookupError:
            continue
        return uri
    searched = " or ".join(known_stores()) or f"{DEFAULT_URI} (absent)"
    raise SystemExit(
        f"no run {run_id} in {searched}; pass --tracking-uri of the store it was logged to"
    )


def check_run(run_id: str, tracking_uri: str, allow_unfinished: bool) -> None:
    """The run exists in an existing store and finished (unless allowed otherwise)."""
    try:
        status = open_run(tracking_uri, run_id)
    except LookupError as error:
        raise SystemExit(str(error)) from None
    if status != "FINISHED" and not allow_unfinished:
        raise SystemExit(
            f"run {run_id} is {status}, not FINISHED: its model may not be the one its metrics "
            "describe. Export a finished run of the cell, or pass --allow-unfinished"
        )


def max_difference(reference: dict[str, torch.Tensor], outputs: list) -> float:
    return max(
        float((torch.as_tensor(out) - ref).abs().max())
        for ref, out in zip(reference.values(), outputs, strict=True)
    )


def export_onnx(model: torch.nn.Module, x: torch.Tensor, out: Path) -> Callable | None:
    """Write ONNX; the onnxruntime check, or None when onnxruntime is not installed."""
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        model,
        (x,),
        str(out),
        input_names=["image"],
        output_names=list(model(x)),
        dynamic_shapes={"x": {0: batch}},
        dynamo=True,
        external_data=False,  # one file (models under 2 GB)
    )
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return lambda images: session.run(None, {"image": images.numpy()})


def export_program(model: torch.nn.Module, x: torch.Tensor, out: Path) -> Callable:
    program = torch.export.export(model, (x,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(program, str(out))
    loaded = torch.export.load(str(out)).module()
    return lambda images: list(loaded(images).values())


def export_state_dict(model: torch.nn.Module, x: torch.Tensor, out: Path) -> Callable:
    torch.save(model.state_dict(), out)
    state = torch.load(out, weights_only=True)
    model.load_state_dict(state)
    return lambda images: list(model(images).values())


EXPORTERS = {"onnx": export_onnx, "torch_export": export_program, "state_dict": export_state_dict}


@torch.no_grad()
def export(run_id: str, fmt: str, out: Path, tracking_uri: str) -> float | None:
    """Write the run's model to ``out``; the largest output difference (None: not checked)."""
    model, shape = load_run_model(run_id, tracking_uri)
    x = torch.randn((CHECK_BATCH, *shape), generator=torch.Generator().manual_seed(0))
    out.parent.mkdir(parents=True, exist_ok=True)
    with staged_files() as files:  # a failed export leaves a previous file at ``out`` whole
        run_exported = EXPORTERS[fmt](model, x, files.path(out))
        if run_exported is None:
            return None
        check = torch.randn((CHECK_BATCH + 1, *shape), generator=torch.Generator().manual_seed(1))
        return max_difference(model(check), run_exported(check))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.format == "torch_export" and args.out.suffix != ".pt2":
        raise SystemExit(f"--out {args.out}: torch.export programs are .pt2 files; name it .pt2")
    if args.format == "onnx" and importlib.util.find_spec("onnxscript") is None:
        raise SystemExit("--format onnx needs onnx and onnxscript: pip install -e '.[export]'")
    check_output(args.out)
    uri = store_of_run(args.run_id, given_store(args))
    check_run(args.run_id, uri, args.allow_unfinished)
    difference = export(args.run_id, args.format, args.out, uri)
    print(f"wrote {args.out} ({args.format}, {args.out.stat().st_size / 1e6:.2f} MB)")
    if difference is None:
        print("not checked: onnxruntime is not installed (pip install onnxruntime)")
    else:
        print(f"max abs difference from the PyTorch outputs: {difference:.3g}")
    return 0
