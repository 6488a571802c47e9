"""Run `predict_df` and `predict_array` with `distributed=True` and record what each process forecast, for
tests/test_forecast_distributed.py.

Launched by `accelerate launch ... tests/forecast_probe.py <model> <data.csv> <contexts.npy> <output dir>`: every
process counts the series that reach its model and the rows it gets back, in `<output dir>/probe_rank<rank>.json`;
the main process writes both forecasts (`predict_df.parquet`, `predict_array.npz`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from modeling_ttm import TTMForPrediction
from ttm_forecast import predict_array, predict_df, process_state


def main(model_path: str, data_path: str, contexts_path: str, output: str) -> None:
    model = TTMForPrediction.from_pretrained(model_path)
    rows: list[int] = []
    model.register_forward_hook(lambda _, args, kwargs, out: rows.append(len(kwargs["past_values"])), with_kwargs=True)
    frame = pd.read_csv(data_path)
    forecast = predict_df(
        model, frame, id_column="series", timestamp_column="time", chunk_size=4, batch_size=3, distributed=True
    )
    by_frame, rows[:] = sum(rows), []
    point, quantiles = predict_array(model, np.load(contexts_path), batch_size=3, distributed=True)
    state = process_state()
    record = {
        "processes": state.num_processes,
        "device": str(model.device),
        "forecast_series": {"df": by_frame, "array": sum(rows)},  # what reached this process's model
        "returned": {"df": len(forecast), "array": len(point)},  # what this process got back
    }
    Path(output, f"probe_rank{state.process_index}.json").write_text(json.dumps(record))
    if state.is_main_process:
        forecast.to_parquet(Path(output, "predict_df.parquet"), index=False)
        np.savez(Path(output, "predict_array.npz"), point=point, quantiles=quantiles)


if __name__ == "__main__":
    main(*sys.argv[1:])
