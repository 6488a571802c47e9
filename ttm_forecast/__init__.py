"""Forecasting as a library call: a pandas DataFrame of series in, a long-format forecast DataFrame out.

```python
from ttm_forecast import predict_df

forecast = predict_df("checkpoints/ttm-r2-512-96-offline", frame, id_column="store", timestamp_column="date",
                      target_columns=["sales"], prediction_length=28)
```
"""

from .predict import predict_array, predict_dataset, predict_df

__all__ = ["predict_array", "predict_dataset", "predict_df"]
