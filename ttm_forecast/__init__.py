"""Forecasting as a library call: a pandas DataFrame of series in, a long-format forecast DataFrame out.

```python
from ttm_forecast import predict_df

forecast = predict_df("checkpoints/ttm-r2-512-96-offline", frame, id_column="store", timestamp_column="date",
                      target_columns=["sales"], prediction_length=28)
```

Under `accelerate launch --num_processes N`, `predict_df(..., distributed=True)` splits the series between the processes
and returns the whole forecast on every process, row for row the single-process result.
"""

from .predict import predict_array, predict_dataset, predict_df, process_state

__all__ = ["predict_array", "predict_dataset", "predict_df", "process_state"]
