"""Re-save a TTM checkpoint written by IBM's granite-tsfm as a native one (model_type "ttm", with its code files).

The converted directory loads with `TTMForPrediction.from_pretrained(OUT)`, with
`AutoModelForTimeSeriesPrediction.from_pretrained(OUT)` once `modeling_ttm` is imported, or with
`trust_remote_code=True` and nothing of this project installed. The script checks that the converted model
reproduces the loaded one on a random input before it returns.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ttm_data.cli import FlagParser


def convert(source: str, output: str, revision: str | None = None) -> float:
    """Converts `source` (a local directory or a Hub id) into `output`; returns the max abs output difference."""
    import torch

    from modeling_ttm import TTMForPrediction

    out_dir = Path(output)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"output directory {output!r} is not empty; choose a new directory.")
    if Path(source).exists() and out_dir.resolve() == Path(source).resolve():
        raise ValueError("output must differ from the input checkpoint: input files are never modified.")
    model = TTMForPrediction.from_pretrained(source, revision=revision).eval()
    model.save_pretrained(out_dir)
    converted = TTMForPrediction.from_pretrained(out_dir).eval()
    config = model.config
    generator = torch.Generator().manual_seed(0)
    past = torch.randn(2, config.context_length, config.num_input_channels, generator=generator)
    inputs = {"past_values": past}
    if config.resolution_prefix_tuning:
        inputs["freq_token"] = torch.zeros(2, dtype=torch.long)
    if config.categorical_vocab_size_list:
        inputs["static_categorical_values"] = torch.zeros(2, len(config.categorical_vocab_size_list), dtype=torch.long)
    if config.enable_forecast_channel_mixing and config.exogenous_channel_indices:
        inputs["future_values"] = torch.randn(2, config.prediction_length, config.num_input_channels)
    with torch.no_grad():
        difference = (model(**inputs).prediction_outputs - converted(**inputs).prediction_outputs).abs().max()
    return float(difference)


def main() -> None:
    parser = FlagParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="granite-tsfm checkpoint: a local directory or a Hub model id")
    parser.add_argument("output", help="new directory for the native checkpoint (must not exist or be empty)")
    parser.add_argument("--revision", default=None, help="Hub branch / tag / commit of the input, e.g. 512-96-r2")
    args = parser.parse_args()
    try:
        difference = convert(args.input, args.output, args.revision)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    print(f"wrote {args.output} (max abs difference of forecasts: {difference:.3g})")


if __name__ == "__main__":
    main()
