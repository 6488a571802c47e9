"""Windows per second of ForecastWindowCollator next to windows per second of a training step.

Cuts training windows of the r2 512-96 shape (context 512, horizon 96) from a real 5-minute glucose series (CGM,
bokeh-sampledata) and times the collator against forward + backward + AdamW step of a TTM with the r2 512-96
architecture, at the same batch size; both rates come from the median call. The collator should be at least 20x
faster, so that it never limits training.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ttm_data.cli import FlagParser
from ttm_zoo import ARCHITECTURES

R2_512_96 = ARCHITECTURES["r2-512-96"]


def glucose_series_path() -> Path:
    spec = importlib.util.find_spec("bokeh_sampledata")
    if spec is None or spec.origin is None:
        raise SystemExit("the benchmark reads the CGM series of bokeh-sampledata: pip install bokeh-sampledata")
    return Path(spec.origin).parent / "_data" / "CGM.csv.gz"


def windows_per_second(run: Callable[[], object], windows_per_call: int, calls: int) -> float:
    """Windows per second of the median call (robust to other processes on a shared machine), after a warm-up."""
    run()
    durations = []
    for _ in range(calls):
        start = time.perf_counter()
        run()
        durations.append(time.perf_counter() - start)
    return windows_per_call / statistics.median(durations)


def benchmark(batch_size: int = 64, collator_calls: int = 200, train_steps: int = 10) -> dict[str, float]:
    """Windows per second of the collator and of a training step, and their ratio."""
    import torch

    from configuration_ttm import TTMConfig
    from modeling_ttm import TTMForPrediction
    from ttm_data import ForecastWindowCollator, TrainWindows, load_series

    torch.manual_seed(0)
    dataset = load_series(glucose_series_path(), target_columns=["glucose"], resample=True)
    model = TTMForPrediction(TTMConfig(num_input_channels=1, **R2_512_96)).train()
    collator = ForecastWindowCollator.from_config(model.config)
    windows = TrainWindows(dataset, model.config.prediction_length)
    rows = [windows[i] for i in torch.randint(len(windows), (batch_size,)).tolist()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def train_step() -> None:
        loss = model(**collator(rows)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    collator_rate = windows_per_second(lambda: collator(rows), batch_size, collator_calls)
    step_rate = windows_per_second(train_step, batch_size, train_steps)
    return {"collator": collator_rate, "training_step": step_rate, "ratio": collator_rate / step_rate}


def main() -> None:
    parser = FlagParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64, help="windows per batch (default: %(default)s)")
    parser.add_argument("--collator-calls", type=int, default=200, help="timed collator calls (default: %(default)s)")
    parser.add_argument("--train-steps", type=int, default=10, help="timed training steps (default: %(default)s)")
    args = parser.parse_args()
    import torch

    result = benchmark(args.batch_size, args.collator_calls, args.train_steps)
    print(f"torch threads: {torch.get_num_threads()}, batch size {args.batch_size}, context 512, horizon 96")
    print(f"collator:      {result['collator']:12,.0f} windows/s")
    print(f"training step: {result['training_step']:12,.0f} windows/s (r2 512-96 architecture, forward+backward+AdamW)")
    print(f"collator / training step: {result['ratio']:.0f}x")


if __name__ == "__main__":
    main()
