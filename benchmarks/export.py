"""``python -m benchmarks.export RUN_ID --format onnx|torch_export|state_dict --out PATH``: a run's
model for use outside the suite (``benchmarks.tools.export``)."""

import sys

from benchmarks.tools.export import main

if __name__ == "__main__":
    sys.exit(main())
