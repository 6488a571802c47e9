"""Plot what a gap does to a forecast: weekly CO2 (statsmodels) with a 26-week gap, against the complete series.

The shipped checkpoint forecasts the last 52 weeks of the Mauna Loa weekly CO2 series (statsmodels' `co2` dataset)
from the 512 weeks before them, twice: from the complete context (its own few missing weeks interpolated by pandas)
and from the same context with 26 weeks removed (NaN) shortly before the forecast starts. The figure shows both
forecasts, the actual values and the gap, and the title gives the largest distance between the two forecasts.

Usage: python scripts/plot_missing_values.py [--output docs/missing_values.png]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ttm_data.cli import FlagParser

ROOT = Path(__file__).resolve().parents[1]

if TYPE_CHECKING:  # numpy, torch, matplotlib and the model load inside the functions, after the arguments
    import numpy as np

    from modeling_ttm import TTMForPrediction

CHECKPOINT = ROOT / "checkpoints" / "ttm-r2-512-96-offline"
HORIZON = 52
GAP = slice(-60, -34)  # 26 weeks of the context, ending 34 weeks before the forecast starts
SHOWN = 160  # context weeks drawn


def co2_weekly() -> np.ndarray:
    """The weekly CO2 series, its missing weeks linearly interpolated (the "complete" series)."""
    import numpy as np
    import statsmodels.api as sm

    return sm.datasets.co2.load_pandas().data["co2"].interpolate().to_numpy(dtype=np.float32)


def forecast(model: TTMForPrediction, context: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        past = torch.from_numpy(context)[None, :, None]
        return model(past_values=past).prediction_outputs[0, :HORIZON, 0].numpy()


def plot(output: Path) -> float:
    """Writes the figure to `output`; returns the largest distance between the two forecasts."""
    import matplotlib
    import numpy as np

    from modeling_ttm import TTMForPrediction

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    model = TTMForPrediction.from_pretrained(CHECKPOINT).eval()
    series = co2_weekly()
    length = model.config.context_length
    context, actual = series[-HORIZON - length : -HORIZON], series[-HORIZON:]
    with_gap = context.copy()
    with_gap[GAP] = np.nan
    complete, gapped = forecast(model, context), forecast(model, with_gap)
    distance = float(np.abs(gapped - complete).max())

    past_steps = np.arange(-SHOWN, 0)
    future_steps = np.arange(HORIZON)
    figure, axis = plt.subplots(figsize=(9, 4))
    axis.plot(past_steps, with_gap[-SHOWN:], color="black", lw=1, label="context with a 26-week gap (NaN)")
    gap_steps = np.arange(-length, 0)[GAP]
    axis.axvspan(gap_steps[0], gap_steps[-1], color="tab:red", alpha=0.12, label="gap")
    axis.plot(future_steps, actual, color="gray", lw=1, label="actual")
    axis.plot(future_steps, complete, color="tab:blue", lw=2, label="forecast from the complete series")
    axis.plot(future_steps, gapped, color="tab:orange", lw=2, ls="--", label="forecast from the series with the gap")
    axis.axvline(0, color="gray", lw=0.5)
    axis.set_xlabel("weeks from the forecast start")
    axis.set_ylabel("CO2 (ppm)")
    axis.set_title(f"Weekly CO2, shipped checkpoint: the gap moves the forecast by at most {distance:.2f} ppm")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return distance


def main(argv: list[str] | None = None) -> int:
    parser = FlagParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "missing_values.png", help="PNG to write")
    args = parser.parse_args(argv)
    distance = plot(args.output)
    print(f"wrote {args.output}: the gap moves the forecast by at most {distance:.3f} ppm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
