"""The documented compiled path: torch.compile(model, dynamic=True, options={"freezing": True})."""

import pytest
import torch
from tiny import tiny_config
from torch._dynamo.utils import counters

from modeling_ttm import TTMForPrediction


def test_compiled_model_matches_eager_checks_inputs_and_reuses_its_graph():
    torch.manual_seed(0)
    model = TTMForPrediction(tiny_config(monotone_quantile_head=True, quantile_levels=[0.1, 0.5, 0.9])).eval()
    torch._dynamo.reset()
    compiled = torch.compile(model, dynamic=True, options={"freezing": True})
    generator = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        for batch in (4, 5, 8):
            x = torch.randn(batch, 32, 3, generator=generator)
            x[0, :5, 1] = float("nan")
            expected, actual = model(past_values=x), compiled(past_values=x)
            torch.testing.assert_close(actual.prediction_outputs, expected.prediction_outputs, rtol=0, atol=1e-5)
            torch.testing.assert_close(actual.quantile_outputs, expected.quantile_outputs, rtol=0, atol=1e-5)
            if batch == 4:
                graphs = counters["stats"]["unique_graphs"]
        assert counters["stats"]["unique_graphs"] == graphs  # batch sizes 5 and 8 reuse the graph of 4
        x[1, 2, 0] = float("inf")
        with pytest.raises(ValueError, match="past_values"):
            compiled(past_values=x)
