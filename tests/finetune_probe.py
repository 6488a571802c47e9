"""Run scripts/finetune.py in this process and record what the process did, for tests/test_finetune.py.

Launched by `accelerate launch ... tests/finetune_probe.py <finetune arguments>`; writes, per process, the window
ends that the training collator drew and the weights the process holds after training to
`<output_dir>/probe_rank<rank>.json` / `.safetensors`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.torch import save_file
from script_loader import load_script

from ttm_data import TrainWindows
from ttm_data.collator import process_index

drawn: list[int] = []
sample_ends = TrainWindows.sample_ends


def recording_sample_ends(self: TrainWindows, series: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ends = sample_ends(self, series, rng)
    drawn.extend(int(end) for end in ends)
    return ends


TrainWindows.sample_ends = recording_sample_ends
trainer = load_script("finetune").main(sys.argv[1:])
prefix = Path(trainer.args.output_dir) / f"probe_rank{process_index()}"
state = {name: tensor.detach().contiguous() for name, tensor in trainer.model.state_dict().items()}
save_file(state, f"{prefix}.safetensors")
Path(f"{prefix}.json").write_text(json.dumps({"ends": drawn}))
