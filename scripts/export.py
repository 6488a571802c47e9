"""Export a TTM checkpoint to ONNX and check it against ONNX Runtime.

The exported graph is the numeric core of `TTMForPrediction.forward` at a fixed context length with a dynamic batch
size. Its inputs, by name:

  past_values                (batch, context_length, num_input_channels) float32; NaN (and +/-inf) = missing
  past_observed_mask         (batch, context_length, num_input_channels) float32, 1 = observed (--observed-mask only)
  freq_token                 (batch,) int64 in [0, frequency_token_vocab_size)   (resolution_prefix_tuning only)
  static_categorical_values  (batch, num_categorical) int64                       (categorical_vocab_size_list only)
  future_values              (batch, forecast_length, num_input_channels) float32 (forecast channel mixing with
                             exogenous channels only: the known future of those channels; other channels are ignored)

and its outputs prediction_outputs (batch, forecast_length, num_targets) and, for models with a quantile head,
quantile_outputs (batch, num_quantiles, forecast_length, num_targets), in the units of the input.

Usage: python scripts/export.py CHECKPOINT_DIR OUTPUT.onnx [--batch-size-for-tracing N] [--opset N]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ttm_data.cli import FlagParser

if TYPE_CHECKING:  # torch, ONNX Runtime and the model load inside the functions, after the arguments are checked
    import torch

    from configuration_ttm import TTMConfig
    from modeling_ttm import TTMForPrediction

DEFAULT_OPSET = 18
PARITY_TOLERANCE = 1e-4
PARITY_BATCH_SIZES = (1, 5)

EPILOG = """\
The exporter is torch.onnx.export(dynamo=True) on TTMForPrediction.forward itself: its checks that read tensor
values (+/-inf, token ranges) run in eager mode only, so the graph holds the model's own missing-value handling (a
non-finite value of past_values is marked unobserved and filled by linear interpolation between observed
neighbours, the nearest one at the edges) and every TTM release, R3's decomposed models included.
Callers must pass exactly context_length time steps (left-pad shorter series with NaN) and valid integer tokens;
ONNX Runtime does not raise on +/-inf, which counts as missing.

After the export, random inputs (with some NaN) at batch sizes 1 and 5 are run through ONNX Runtime and through
TTMForPrediction.forward; the script prints the max abs difference and exits with status 1 if it exceeds 1e-4.
"""


def exportable(model: TTMForPrediction) -> torch.nn.Module:
    """`TTMForPrediction.forward` with the graph's inputs by position and its forecasts as a tuple of outputs."""
    from torch import nn

    class ExportableTTM(nn.Module):
        def __init__(self, model: TTMForPrediction):
            super().__init__()
            self.model = model.eval()

        def forward(
            self,
            past_values: torch.Tensor,
            past_observed_mask: torch.Tensor | None = None,
            freq_token: torch.Tensor | None = None,
            static_categorical_values: torch.Tensor | None = None,
            future_values: torch.Tensor | None = None,
        ) -> tuple[torch.Tensor, ...]:
            out = self.model(
                past_values=past_values,
                past_observed_mask=past_observed_mask,
                freq_token=freq_token,
                static_categorical_values=static_categorical_values,
                future_values=future_values,
                return_loss=False,
            )
            if out.quantile_outputs is None:
                return (out.prediction_outputs,)
            return out.prediction_outputs, out.quantile_outputs

    return ExportableTTM(model)


def needs_future_values(config: TTMConfig) -> bool:
    """Forecast channel mixing with exogenous channels reads their known future values at inference too."""
    return config.enable_forecast_channel_mixing and bool(config.exogenous_channel_indices)


def output_names(config: TTMConfig) -> list[str]:
    """Names of the ONNX graph outputs for `config`, in order."""
    return ["prediction_outputs"] + (["quantile_outputs"] if config.forecast_quantiles else [])


def random_inputs(
    config: TTMConfig, batch: int, generator: torch.Generator, observed_mask: bool = False
) -> dict[str, torch.Tensor]:
    """Random graph inputs, named and ordered as in the graph; every series has a few NaN (missing) past values."""
    import torch

    shape = (batch, config.context_length, config.num_input_channels)
    past_values = torch.randn(shape, generator=generator) * 3 + 1
    past_values[torch.rand(shape, generator=generator) < 0.05] = float("nan")
    inputs = {"past_values": past_values}
    if observed_mask:
        inputs["past_observed_mask"] = (torch.rand(shape, generator=generator) > 0.1).float()
    if config.resolution_prefix_tuning:
        inputs["freq_token"] = torch.randint(config.frequency_token_vocab_size, (batch,), generator=generator)
    if config.categorical_vocab_size_list is not None:
        columns = [torch.randint(size, (batch,), generator=generator) for size in config.categorical_vocab_size_list]
        inputs["static_categorical_values"] = torch.stack(columns, dim=1)
    if needs_future_values(config):
        future_shape = (batch, config.forecast_length, config.num_input_channels)
        inputs["future_values"] = torch.randn(future_shape, generator=generator)
    return inputs


@contextlib.contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Only errors from these loggers (the exporter logs every skipped torchvision op and optimizer pass)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_onnx(
    model: TTMForPrediction,
    path: Path,
    batch_size_for_tracing: int = 2,
    opset: int = DEFAULT_OPSET,
    observed_mask: bool = False,
) -> None:
    """Writes `model` as a self-contained ONNX file with a dynamic batch axis on every input and output."""
    import torch

    config = model.config
    example = random_inputs(config, batch_size_for_tracing, torch.Generator().manual_seed(0), observed_mask)
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings(), quiet_loggers("torch.onnx", "onnxscript", "onnx_ir"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            exportable(model),
            kwargs=example,
            input_names=list(example),
            output_names=output_names(config),
            opset_version=opset,
            dynamic_shapes={name: {0: batch} for name in example},
            dynamo=True,
            verbose=False,
        )
    program.save(str(path), external_data=False)


def onnx_parity(
    model: TTMForPrediction,
    path: Path,
    batch_sizes: tuple[int, ...] = PARITY_BATCH_SIZES,
    observed_mask: bool = False,
    seed: int = 0,
) -> float:
    """Max abs difference between ONNX Runtime and `TTMForPrediction.forward` over every output and batch size."""
    import numpy as np
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch in batch_sizes:
        inputs = random_inputs(model.config, batch, generator, observed_mask)
        with torch.inference_mode():
            expected = model(**inputs, return_loss=False, return_dict=True)
        actual = session.run(None, {name: tensor.numpy() for name, tensor in inputs.items()})
        for name, value in zip(output_names(model.config), actual, strict=True):
            reference = getattr(expected, name).numpy()
            if value.shape != reference.shape:
                raise AssertionError(f"{name}: ONNX shape {value.shape} != PyTorch {reference.shape} (batch {batch})")
            worst = max(worst, float(np.abs(value - reference).max()))
    return worst


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = FlagParser(
        description=__doc__.split("\n\n")[0], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, help="checkpoint directory (save_pretrained, ours or granite-tsfm)")
    parser.add_argument("output", type=Path, help="ONNX file to write (weights included)")
    parser.add_argument(
        "--batch-size-for-tracing",
        type=int,
        default=2,
        metavar="N",
        help="batch size of the example inputs traced by the exporter; the exported batch axis is dynamic (default: 2)",
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})")
    parser.add_argument(
        "--observed-mask", action="store_true", help="add a past_observed_mask input (default: NaN marks missing)"
    )
    args = parser.parse_args(argv)
    if args.batch_size_for_tracing < 2:
        parser.error("--batch-size-for-tracing must be >= 2 (batch size 1 would be specialised as a constant)")
    if not (args.checkpoint / "config.json").is_file():
        parser.error(f"{args.checkpoint} is not a checkpoint directory (no config.json)")
    output = args.output.resolve()
    if output == args.checkpoint.resolve() or (output.parent == args.checkpoint.resolve() and output.exists()):
        parser.error(f"refusing to overwrite {args.output}, which belongs to the checkpoint")
    if args.output.suffix != ".onnx":
        parser.error(f"the output file must end in .onnx, got {args.output}")
    if not args.output.parent.is_dir():
        parser.error(f"the output directory {args.output.parent} does not exist")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from modeling_ttm import TTMForPrediction

    model = TTMForPrediction.from_pretrained(args.checkpoint, dtype=torch.float32).eval()
    start = time.perf_counter()
    export_onnx(model, args.output, args.batch_size_for_tracing, args.opset, args.observed_mask)
    seconds = time.perf_counter() - start
    names = ", ".join(random_inputs(model.config, 1, torch.Generator(), args.observed_mask))
    print(f"wrote {args.output} ({args.output.stat().st_size / 2**20:.1f} MiB) in {seconds:.1f} s, inputs: {names}")
    diff = onnx_parity(model, args.output, observed_mask=args.observed_mask)
    batches = " and ".join(map(str, PARITY_BATCH_SIZES))
    print(f"ONNX Runtime vs PyTorch, batch sizes {batches}: max abs diff {diff:.2e} (tolerance {PARITY_TOLERANCE:g})")
    if diff > PARITY_TOLERANCE:
        print("parity check FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
