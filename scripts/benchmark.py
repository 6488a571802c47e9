"""CPU benchmark: our TTMForPrediction (modeling_ttm) against granite-tsfm's TinyTimeMixerForPrediction.

Both models are built from the same config kwargs and carry identical weights (granite-tsfm is initialised at random
with a fixed seed, ours loads its state_dict). Before any timing, their prediction_outputs must agree within 1e-5.

Usage: python scripts/benchmark.py [--repeats N] [--json results.json] [--onnx] [--compile]   (see --help)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ttm_data.cli import FlagParser
from ttm_zoo import ARCHITECTURES

if TYPE_CHECKING:  # numpy and torch load inside the functions, after the arguments are checked
    import numpy as np
    import torch
    from torch import nn

    Prepared = tuple[Callable[[], np.ndarray], float, dict]  # (call giving prediction_outputs, one-off s, columns)

TOLERANCE = 1e-5
# The documented compiled path: one graph for every batch size >= 2, frozen weights (oneDNN fusions).
COMPILE_OPTIONS = {"dynamic": True, "options": {"freezing": True}}
NEW_GRAPHS = "new_graphs_for_2_more_batch_sizes"
MIN_SAMPLE_SECONDS = 0.05  # fast calls are repeated inside one timed sample until it lasts at least this long
PEAK_MATMUL_SIZE = 2048

# Published r2 512-96 architecture (805,280 parameters).
R2_512_96 = {**ARCHITECTURES["r2-512-96"], "scaling": "std"}


@dataclass(frozen=True)
class Setup:
    """A model configuration and the (batch, channels) shape of each figure."""

    name: str
    description: str
    extra_kwargs: dict
    shapes: dict[str, tuple[int, int]]

    def kwargs(self, num_channels: int) -> dict:
        return {**R2_512_96, "num_input_channels": num_channels, **self.extra_kwargs}

    @property
    def needs_future(self) -> bool:
        """Forecast channel mixing with exogenous channels reads their known future values at inference too."""
        return bool(self.extra_kwargs.get("exogenous_channel_indices"))


SETUPS = {
    "base": Setup(
        "base",
        "r2 512-96, common_channel",
        {},
        {"inference": (64, 7), "latency": (1, 1), "train": (256, 1)},
    ),
    "mix_channel": Setup(
        "mix_channel",
        "r2 512-96, decoder_mode=mix_channel",
        {"decoder_mode": "mix_channel"},
        {"inference": (64, 7), "latency": (1, 7), "train": (32, 7)},
    ),
    "fcm": Setup(
        "fcm",
        "r2 512-96, forecast channel mixing, exogenous channels 5,6",
        {
            "enable_forecast_channel_mixing": True,
            "exogenous_channel_indices": [5, 6],
            "prediction_channel_indices": [0, 1, 2, 3, 4],
            "fcm_use_mixer": True,
        },
        {"inference": (64, 7), "latency": (1, 7), "train": (32, 7)},
    ),
    "r3": Setup(
        "r3",
        "r2 512-96 shape with IBM's R3 pretraining options",
        {"multi_scale": True, "register_tokens": 2, "fft_length": 2, "multi_quantile_head": True},
        {"inference": (64, 7), "latency": (1, 1), "train": (256, 1)},
    ),
    "r3_decomposed": Setup(
        "r3_decomposed",
        "the r3 config decomposed into trend and residual forecasters (residual context 128)",
        {
            "multi_scale": True,
            "register_tokens": 2,
            "fft_length": 2,
            "multi_quantile_head": True,
            "decompose": True,
            "residual_context_length": 128,
        },
        {"inference": (64, 7), "latency": (1, 1), "train": (256, 1)},
    ),
}
FIGURES = ("inference", "latency", "train")

EPILOG = """\
figures (per config; "ours" and "granite" timings are interleaved in one process, median over --repeats):
  inference  eval mode under torch.inference_mode(), throughput batch (64 x 7 channels)
  latency    eval mode under torch.inference_mode(), one multivariate series (1 x 1, or 1 x 7 for the
             channel-mixing configs, whose weights depend on the channel count)
  train      train mode, one step = zero_grad + forward with future_values (MSE loss) + backward + AdamW step,
             batch 256 x 1 (32 x 7 = 224 series for the channel-mixing configs)

configs (all run by default):
  base         published r2 512-96 architecture (context 512, patch 64, d_model 192, 3 adaptive patching levels,
               2 layers, decoder 2 x 128, expansion 2, std scaling, horizon 96)
  mix_channel  the same with decoder_mode="mix_channel"
  fcm          the same with forecast channel mixing (fcm_use_mixer) and exogenous channels 5 and 6 of 7
  r3           the base architecture with IBM's R3 pretraining options: multi-scale patches, 2 register tokens,
               2 frequency tokens, multi-quantile head (pinball loss when training)
  r3_decomposed  the r3 config as a decomposed model: trend forecaster on the whole context, residual
               forecaster on the last 128 steps (granite-tsfm's TinyTimeMixerForDecomposedPrediction)

columns:
  max|diff|    max abs difference of prediction_outputs (ours vs granite, eval mode, same weights, same input);
               a figure whose difference exceeds 1e-5 (or whose model fails) is printed as FAILED with the
               error, the others still run, and the exit status is 1
  ratio        granite time / ours time: > 1 means ours is faster
  GFLOP        matmul-class FLOPs (torch.utils.flop_counter.FlopCounterMode) of one forward of our model, or of
               one forward + backward for "train"; elementwise, normalisation and optimizer work are not counted.
               The same count is used for both models' GFLOP/s.
  %peak        achieved GFLOP/s over the fp32 2048 x 2048 torch.mm GFLOP/s measured at the start of the run
               (fastest of max(repeats, 5) calls)

ONNX Runtime (--onnx; needs the `export` extra):
  each selected config is exported by scripts/export.py (once per figure, for its channel count; the export
  time is printed) and ONNX Runtime (CPUExecutionProvider, intra-op threads = torch's thread count) is timed
  on the latency and inference figures, interleaved with ours and granite-tsfm; max|diff| is ONNX Runtime vs
  ours and must be <= 1e-4; the ratios are granite time / ONNX Runtime time and ours time / ONNX Runtime time

torch.compile (--compile):
  each selected config's model is compiled with torch.compile(model, dynamic=True, options={"freezing": True})
  and timed under torch.inference_mode() like ONNX Runtime above (max|diff| must be <= 1e-5). "one-off s" is
  the first call, which compiles; PyTorch compiles batch size 1 as its own graph, every other batch size shares
  one. After timing, two more batch sizes are run and the number of graphs they compiled is printed (0 for
  the inference figure; for batch size 1 the first size >= 2 compiles the shared graph).

peak memory of a training step (measured on the train figure's model pair):
  torch.profiler(profile_memory=True) records every CPU tensor allocation and free made during one step; the
  peak of their running sum is added to the bytes of the tensors live before the step (parameters, gradients,
  AdamW state and the batch). This counts torch tensor memory only, not the Python heap or allocator caches.
"""


def parse_args() -> argparse.Namespace:
    parser = FlagParser(
        description=__doc__.split("\n\n")[0], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed samples per model and figure (default: 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per model before timing (default: 2)")
    parser.add_argument(
        "--configs", nargs="+", choices=list(SETUPS), default=list(SETUPS), help="configs to run (default: all)"
    )
    parser.add_argument(
        "--figures", nargs="+", choices=FIGURES, default=list(FIGURES), help="figures to run (default: all)"
    )
    parser.add_argument("--threads", type=int, help="call torch.set_num_threads(N) (default: leave torch's default)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random init and inputs (default: 0)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory measurement of the train step")
    parser.add_argument(
        "--profile", action="store_true", help="also print a torch.profiler op breakdown of the base inference figure"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write all numbers to this JSON file")
    parser.add_argument(
        "--compile", action="store_true", help="also time the torch.compile path of each config (see below)"
    )
    parser.add_argument(
        "--onnx", action="store_true", help="also export each config to ONNX and time ONNX Runtime (see below)"
    )
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 1:
        parser.error("--repeats and --warmup must be >= 1")
    return args


def load_model_classes() -> tuple[type, type, type, type]:
    """Import (TTMConfig, TTMForPrediction, TinyTimeMixerConfig, TinyTimeMixerForPrediction) quietly."""
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    from tsfm_public.models.tinytimemixer import TinyTimeMixerConfig, TinyTimeMixerForPrediction

    from configuration_ttm import TTMConfig
    from modeling_ttm import TTMForPrediction

    return TTMConfig, TTMForPrediction, TinyTimeMixerConfig, TinyTimeMixerForPrediction


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment() -> dict:
    import torch

    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }


def matmul_peak_gflops(repeats: int) -> float:
    """GFLOP/s of the fastest of max(repeats, 5) fp32 square matmuls, after one warm-up call."""
    import torch

    a, b = torch.randn(PEAK_MATMUL_SIZE, PEAK_MATMUL_SIZE), torch.randn(PEAK_MATMUL_SIZE, PEAK_MATMUL_SIZE)
    torch.mm(a, b)
    times = []
    for _ in range(max(repeats, 5)):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * PEAK_MATMUL_SIZE**3 / min(times) / 1e9


def build_pair(classes: tuple[type, type, type, type], kwargs: dict, seed: int) -> tuple[nn.Module, nn.Module]:
    """(ours, granite) with granite's seeded random weights loaded into ours."""
    import torch

    ttm_config, ttm_model, granite_config, granite_model = classes
    if kwargs.get("decompose"):  # granite-tsfm has a separate class for decomposed models
        from tsfm_public.models.tinytimemixer.modeling_tinytimemixer import TinyTimeMixerForDecomposedPrediction

        granite_model = TinyTimeMixerForDecomposedPrediction
    torch.manual_seed(seed)
    granite = granite_model(granite_config(**kwargs))
    ours = ttm_model(ttm_config(**kwargs))
    ours.load_state_dict(granite.state_dict())
    return ours, granite


def make_inputs(setup: Setup, batch: int, channels: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    import torch

    context, horizon = R2_512_96["context_length"], R2_512_96["prediction_length"]
    inputs = {"past_values": torch.randn(batch, context, channels, generator=generator)}
    if setup.needs_future:
        inputs["future_values"] = torch.randn(batch, horizon, channels, generator=generator)
    return inputs


def max_abs_diff(ours: nn.Module, granite: nn.Module, inputs: dict[str, torch.Tensor]) -> float:
    import torch

    ours.eval()
    granite.eval()
    with torch.inference_mode():
        expected = granite(**inputs, return_loss=False, return_dict=True).prediction_outputs
        actual = ours(**inputs, return_loss=False, return_dict=True).prediction_outputs
    if actual.shape != expected.shape:
        raise AssertionError(f"prediction_outputs shape {tuple(actual.shape)} != granite's {tuple(expected.shape)}")
    return (actual - expected).abs().max().item()


class TrainStep:
    """One optimisation step: zero_grad, forward with future_values, backward of the loss, AdamW step."""

    def __init__(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> None:
        import torch

        self.model = model.train()
        self.inputs = inputs
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def __call__(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.model(**self.inputs, return_dict=True).loss.backward()
        self.optimizer.step()

    def resident_bytes(self) -> int:
        """Bytes of the tensors alive between steps: parameters, gradients, optimizer state and the batch."""
        import torch

        tensors = [*self.model.parameters(), *self.inputs.values()]
        tensors += [p.grad for p in self.model.parameters() if p.grad is not None]
        tensors += [v for state in self.optimizer.state.values() for v in state.values() if torch.is_tensor(v)]
        return sum(t.numel() * t.element_size() for t in tensors)


def make_inference(model: nn.Module, inputs: dict[str, torch.Tensor]) -> Callable[[], None]:
    import torch

    model.eval()

    def run() -> None:
        with torch.inference_mode():
            model(**inputs, return_loss=False, return_dict=True)

    return run


def interleaved_medians(calls: dict[str, Callable[[], None]], repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds per call of each callable, timed alternately in one process (order flips every repeat)."""
    last_warmup = []
    for call in calls.values():
        for _ in range(warmup):
            start = time.perf_counter()
            call()
        last_warmup.append(time.perf_counter() - start)
    number = max(1, math.ceil(MIN_SAMPLE_SECONDS / max(last_warmup)))
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            start = time.perf_counter()
            for _ in range(number):
                calls[name]()
            samples[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(times) for name, times in samples.items()}


def count_flops(call: Callable[[], None]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops()


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2: the profiler's C++ backend logs its start and stop there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_step_bytes(step: TrainStep) -> int:
    """Peak torch CPU tensor bytes of one training step (see --help); call after warm-up steps."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    resident = step.resident_bytes()
    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events = [e for e in events if e.device_type() == torch.autograd.DeviceType.CPU]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return resident + peak


def run_figure(
    classes: tuple[type, type, type, type], setup: Setup, figure: str, args: argparse.Namespace, peak: float
) -> dict:
    import torch

    batch, channels = setup.shapes[figure]
    generator = torch.Generator().manual_seed(args.seed)
    ours, granite = build_pair(classes, setup.kwargs(channels), args.seed)
    inputs = make_inputs(setup, batch, channels, generator)
    diff = max_abs_diff(ours, granite, inputs)
    if diff > TOLERANCE:
        raise AssertionError(f"prediction_outputs differ by {diff:.3g} > {TOLERANCE:g}")
    row = {"config": setup.name, "description": setup.description, "figure": figure, "batch": batch}
    row |= {"channels": channels, "max_abs_diff": diff}
    if figure == "train":
        horizon = R2_512_96["prediction_length"]
        inputs["future_values"] = torch.randn(batch, horizon, channels, generator=generator)
        calls = {"ours": TrainStep(ours, inputs), "granite": TrainStep(granite, inputs)}
    else:
        calls = {"ours": make_inference(ours, inputs), "granite": make_inference(granite, inputs)}
    row["flops"] = count_flops(calls["ours"])
    granite_flops = count_flops(calls["granite"])
    if granite_flops != row["flops"]:
        row["granite_flops"] = granite_flops
    medians = interleaved_medians(calls, args.repeats, args.warmup)
    for name, seconds in medians.items():
        row[f"{name}_s"] = seconds
        row[f"{name}_gflops"] = row["flops"] / seconds / 1e9
        row[f"{name}_peak_fraction"] = row[f"{name}_gflops"] / peak
    row["ratio"] = medians["granite"] / medians["ours"]
    if figure == "train" and not args.no_memory:
        row["ours_peak_bytes"] = peak_step_bytes(calls["ours"])
        row["granite_peak_bytes"] = peak_step_bytes(calls["granite"])
    return row


# (upper header, lower header, width, alignment) of each table column
COLUMNS = [
    ("config", "", 15, "<"),
    ("figure", "", 10, "<"),
    ("BxC", "", 7, ">"),
    ("max|diff|", "", 10, ">"),
    ("ours", "ms", 10, ">"),
    ("granite", "ms", 10, ">"),
    ("ratio", "g/o", 7, ">"),
    ("GFLOP", "", 7, ">"),
    ("ours", "GFLOP/s", 9, ">"),
    ("ours", "%peak", 8, ">"),
    ("granite", "GFLOP/s", 9, ">"),
    ("granite", "%peak", 8, ">"),
]


def table_line(cells: list[str]) -> str:
    return "".join(f"{cell:{align}{width}}" for cell, (_, _, width, align) in zip(cells, COLUMNS, strict=True))


def table_header() -> str:
    return table_line([c[0] for c in COLUMNS]) + "\n" + table_line([c[1] for c in COLUMNS])


def format_row(row: dict) -> str:
    return table_line(
        [
            row["config"],
            row["figure"],
            f"{row['batch']}x{row['channels']}",
            f"{row['max_abs_diff']:.1e}",
            f"{row['ours_s'] * 1e3:.2f}",
            f"{row['granite_s'] * 1e3:.2f}",
            f"{row['ratio']:.2f}",
            f"{row['flops'] / 1e9:.3f}",
            f"{row['ours_gflops']:.1f}",
            f"{row['ours_peak_fraction']:.1%}",
            f"{row['granite_gflops']:.1f}",
            f"{row['granite_peak_fraction']:.1%}",
        ]
    )


def print_profile(classes: tuple[type, type, type, type], args: argparse.Namespace) -> None:
    """Top operators by self CPU time for both models on the base inference figure."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    setup = SETUPS["base"]
    batch, channels = setup.shapes["inference"]
    ours, granite = build_pair(classes, setup.kwargs(channels), args.seed)
    inputs = make_inputs(setup, batch, channels, torch.Generator().manual_seed(args.seed))
    for name, model in (("ours", ours), ("granite-tsfm", granite)):
        call = make_inference(model, inputs)
        for _ in range(args.warmup):
            call()
        with quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.repeats):
                call()
        print(f"\ntorch.profiler, {name}, base inference {batch}x{channels}, {args.repeats} calls:")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


ALTERNATIVE_WIDTHS = (12, 10, 7, 10, 10, 13, 10, 12, 12, 12)  # columns of the --onnx and --compile tables


def run_alternative(
    classes: tuple[type, type, type, type],
    args: argparse.Namespace,
    name: str,
    tolerance: float,
    prepare: Callable[[nn.Module, dict[str, torch.Tensor]], Prepared],
) -> list[dict]:
    """Times another way of running our model against ours and granite-tsfm on the latency and inference figures.

    `prepare(ours, inputs)` returns a call that gives prediction_outputs as a numpy array, its one-off seconds and
    extra columns for the JSON rows.
    """
    import numpy as np
    import torch

    header = ["config", "figure", "BxC", "one-off s", "max|diff|", f"{name} ms", "ours ms", "granite ms"]
    header += [f"g/{name}", f"o/{name}"]
    print("".join(f"{cell:{'<' if i < 2 else '>'}{ALTERNATIVE_WIDTHS[i]}}" for i, cell in enumerate(header)))
    rows = []
    for setup, figure in ((SETUPS[config], f) for config in args.configs for f in ("latency", "inference")):
        batch, channels = setup.shapes[figure]
        ours, granite = build_pair(classes, setup.kwargs(channels), args.seed)
        inputs = make_inputs(setup, batch, channels, torch.Generator().manual_seed(args.seed))
        call, one_off_s, extra = prepare(ours.eval(), inputs)
        with torch.inference_mode():
            expected = ours(**inputs, return_loss=False, return_dict=True).prediction_outputs.numpy()
        diff = float(np.abs(call() - expected).max())
        if diff > tolerance:
            raise AssertionError(f"{setup.name}/{figure}: {name} and ours differ by {diff:.3g} > {tolerance:g}")
        calls = {name: call, "ours": make_inference(ours, inputs), "granite": make_inference(granite, inputs)}
        medians = interleaved_medians(calls, args.repeats, args.warmup)
        row = {"config": setup.name, "figure": figure, "batch": batch, "channels": channels, "one_off_s": one_off_s}
        row |= {"max_abs_diff": diff, **{f"{key}_s": seconds for key, seconds in medians.items()}, **extra}
        rows.append(row)
        ms = [f"{seconds * 1e3:.2f}" for seconds in medians.values()]
        ratios = [f"{medians[key] / medians[name]:.2f}" for key in ("granite", "ours")]
        cells = [setup.name, figure, f"{batch}x{channels}", f"{one_off_s:.1f}", f"{diff:.1e}", *ms, *ratios]
        print("".join(f"{c:{'<' if i < 2 else '>'}{ALTERNATIVE_WIDTHS[i]}}" for i, c in enumerate(cells)), flush=True)
    return rows


def run_onnx(classes: tuple[type, type, type, type], args: argparse.Namespace) -> list[dict]:
    """ONNX Runtime on the latency and inference figures of each config (see --help)."""
    import onnxruntime as ort
    import torch
    from export import PARITY_TOLERANCE, export_onnx

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    # Idle ONNX Runtime workers spin by default, which would steal the cores from the interleaved torch calls.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    print(f"\nONNX Runtime {ort.__version__} (CPUExecutionProvider, {options.intra_op_num_threads} intra-op threads):")

    def prepare(ours: nn.Module, inputs: dict[str, torch.Tensor]) -> Prepared:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ttm.onnx"
            start = time.perf_counter()
            export_onnx(ours, path)
            export_s = time.perf_counter() - start
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {name: tensor.numpy() for name, tensor in inputs.items()}
        return lambda: session.run(None, feed)[0], export_s, {}

    return run_alternative(classes, args, "onnxrt", PARITY_TOLERANCE, prepare)


def run_compiled(classes: tuple[type, type, type, type], args: argparse.Namespace) -> list[dict]:
    """`torch.compile(model, **COMPILE_OPTIONS)` on the latency and inference figures of each config (see --help)."""
    import torch
    from torch._dynamo.utils import counters

    print(f"\ntorch.compile(model, **{COMPILE_OPTIONS}) under torch.inference_mode():")

    def prepare(ours: nn.Module, inputs: dict[str, torch.Tensor]) -> Prepared:
        torch._dynamo.reset()
        compiled = torch.compile(ours, **COMPILE_OPTIONS)

        def call(batch_inputs: dict[str, torch.Tensor] = inputs) -> np.ndarray:
            with torch.inference_mode():
                return compiled(**batch_inputs, return_loss=False, return_dict=True).prediction_outputs.numpy()

        start = time.perf_counter()
        call()
        compile_s = time.perf_counter() - start
        graphs = counters["stats"]["unique_graphs"]
        batch = next(iter(inputs.values())).shape[0]
        for other in (batch + 1, batch + 5):
            call({key: value[:1].expand(other, *value.shape[1:]).contiguous() for key, value in inputs.items()})
        return call, compile_s, {NEW_GRAPHS: counters["stats"]["unique_graphs"] - graphs}

    rows = run_alternative(classes, args, "compiled", TOLERANCE, prepare)
    for row in rows:
        batches = f"{row['batch'] + 1} and {row['batch'] + 5}"
        print(f"{row['config']}/{row['figure']}: batch sizes {batches} compiled {row[NEW_GRAPHS]} new graph(s)")
    return rows


def main() -> int:
    args = parse_args()
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    env = environment()
    threads = f"threads {env['num_threads']} (interop {env['num_interop_threads']})"
    print(f"torch {env['torch']} | python {env['python']} | {threads}")
    print(f"CPU: {env['cpu']} | {env['cpu_count']} logical CPUs | ISA {env['cpu_capability']} | oneDNN {env['mkldnn']}")
    classes = load_model_classes()
    peak = matmul_peak_gflops(args.repeats)
    print(f"matmul peak: {peak:.1f} GFLOP/s (fp32 {PEAK_MATMUL_SIZE}x{PEAK_MATMUL_SIZE} torch.mm, fastest call)")
    print(f"repeats {args.repeats}, warm-up {args.warmup}; ratio = granite time / ours time (> 1: ours faster)\n")
    for setup in (SETUPS[name] for name in args.configs):
        print(f"config {setup.name}: {setup.description}")
    print()
    print(table_header())
    rows, failures = [], {}
    for name in args.configs:
        setup = SETUPS[name]
        for figure in args.figures:
            try:
                row = run_figure(classes, setup, figure, args, peak)
            except Exception as error:  # report and go on with the other configs
                failures[f"{name}/{figure}"] = f"{type(error).__name__}: {error}"
                print(f"{name:<15}{figure:<10}FAILED  {failures[f'{name}/{figure}']}")
                continue
            rows.append(row)
            print(format_row(row), flush=True)
    memory_rows = [row for row in rows if "ours_peak_bytes" in row]
    if memory_rows:
        print("\npeak torch tensor memory of one training step (see --help):")
        for row in memory_rows:
            ours_mb, granite_mb = row["ours_peak_bytes"] / 2**20, row["granite_peak_bytes"] / 2**20
            shape = f"{row['batch']}x{row['channels']}"
            print(f"{row['config']:<15}{shape:>7}  ours {ours_mb:8.1f} MiB   granite-tsfm {granite_mb:8.1f} MiB")
    for row in rows:
        if "granite_flops" in row:
            print(f"note: {row['config']}/{row['figure']}: granite counts {row['granite_flops'] / 1e9:.3f} GFLOP")
    if args.profile:
        print_profile(classes, args)
    alternatives = {"compile": (args.compile, run_compiled), "onnx": (args.onnx, run_onnx)}
    alternative_rows: dict[str, list[dict]] = {}
    for name, (wanted, run) in alternatives.items():
        try:
            alternative_rows[name] = run(classes, args) if wanted else []
        except Exception as error:  # report and go on
            alternative_rows[name] = []
            failures[name] = f"{type(error).__name__}: {error}"
            print(f"{name} FAILED  {failures[name]}")
    if args.json:
        results = {"environment": env, "matmul_peak_gflops": peak, "repeats": args.repeats, "warmup": args.warmup}
        results["onnx_rows"], results["compiled_rows"] = alternative_rows["onnx"], alternative_rows["compile"]
        args.json.write_text(json.dumps({**results, "rows": rows, "failures": failures}, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
