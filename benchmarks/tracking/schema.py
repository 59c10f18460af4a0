"""The run schema: every tag, metric prefix and artifact path a cell's run is written with and
read back by. Writers and readers import these names, so the two never drift apart."""

from __future__ import annotations

# Identity and bookkeeping tags.
CELL_ID = "cell_id"  # the cell's identity (options that differ from their defaults)
SETTING_ID = "setting_id"  # the comparison it belongs to (data, model, protocol)
LEGACY_CONFIG_HASH = "config_hash"  # identity of runs made before cell ids (hash of everything)
CODE_FINGERPRINT = "code_fingerprint"  # hash of the code that computes the cell
CODE_VERSION = "code_version"  # git commit of the checkout (-dirty with local changes)
HEARTBEAT, OWNER_HOST, OWNER_PID = "heartbeat", "owner_host", "owner_pid"
FAILURE_REASON = "failure_reason"
NOTE = "mlflow.note.content"  # shown on the run's page in the MLflow UI
PRETRAINED_RUN_ID = "pretrained_run_id"  # the run whose trained model the cell started from
RESUMED_FROM, RESUMED_AT = "resumed_from_run_id", "resumed_at"
RESUME_POINT = "resume_point"  # phase and step of the run's newest resumable checkpoint

# Tags that describe the cell (the leaderboard's columns).
METHOD, KIND, VARIANT, SANITY = "method", "kind", "variant", "sanity"  # kind: MethodKind
LEGACY_KIND = "group"  # what runs logged the kind as before it had one name
DATASET, TASKS, MODEL, PROTOCOL = "dataset", "tasks", "model", "protocol"
SPARSITY, SEED, SELECTION = "sparsity", "seed", "selection"
DESCRIPTION_TAGS = (
    METHOD,
    KIND,
    DATASET,
    TASKS,
    MODEL,
    PROTOCOL,
    SPARSITY,
    SEED,
    SELECTION,
    SANITY,
    VARIANT,
    SETTING_ID,
    CELL_ID,
)
HEALTH_TAGS = ("health/collapsed", "health/disconnected", "health/dead_outputs")  # names, joined
ENVIRONMENT_PREFIX = "env/"  # env/python, env/torch, env/cuda, env/cpu, env/gpu, env/threads

# Metric prefixes.
TEST, VAL, TRAIN = "test/", "val/", "train/"
TRAIN_LOSS = "train/loss"  # the weighted multitask loss, logged every protocol.log_every steps
LOSS_SPIKE = "health/loss_spike"  # highest train loss / first one (read from the history)
SPARSITY_ACHIEVED = "sparsity/"
SPARSITY_AT_START = "sparsity_at_start/"
SPARSITY_LAYER = "sparsity_layer/"
MODEL_COST, HEALTH, BUDGET, TIME, SELECTED = "model/", "health/", "budget/", "time/", "selection/"
TRAIN_STEPS, TRAIN_FLOPS = "budget/train_steps", "budget/train_flops"
SCRATCH_STEPS = "budget/scratch_steps"  # a scratch control's retraining steps (its own phase)
INFERENCE = "inference/"  # the final model's inference cost (benchmarks.inference.cost), + tags
KERNEL_TAG = f"{INFERENCE}kernel"
CONSTANT = "constant/"  # test metrics of each task's best constant prediction (the starved floor)
READOUT = "readout/"  # readout/<step>/<task>/<metric>: test metrics early in the fine-tuning

# Artifacts: (folder, file name).
CONFIG = "config.yaml"
MODEL_STATE = ("checkpoint", "model.pt")
MASKS = ("masks", "masks.pt")
SNAPSHOTS = "snapshots"
RESUME_CHECKPOINT = ("resume", "checkpoint.pt")
TASK_MASKS = ("analysis", "task_masks.pt")
MODEL_URI = "model_uri"  # models:/<id> of the run's logged model (named after its cell)
LOGGED_MODEL = "model"  # the artifact folder of a logged model (runs:/<id>/model before names)
SPARSE_STATE = ("sparse", "state_dict.pt")  # a pruned model's weights as nonzeros plus a bitmap


def artifact(path: tuple[str, str]) -> str:
    """``folder/file`` of an artifact."""
    return "/".join(path)


def snapshot_file(step: int) -> str:
    return f"step_{step}.pt"
