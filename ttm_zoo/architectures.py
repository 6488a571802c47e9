"""Architectures of IBM's published TTMs, as `TTMConfig` keyword arguments."""

ARCHITECTURES: dict[str, dict[str, int]] = {
    # The r2 512-96 architecture (REFERENCE.md §2): 805,280 parameters without a quantile head.
    "r2-512-96": dict(
        context_length=512,
        prediction_length=96,
        patch_length=64,
        patch_stride=64,
        d_model=192,
        num_layers=2,
        adaptive_patching_levels=3,
        decoder_num_layers=2,
        decoder_d_model=128,
        expansion_factor=2,
    ),
    # A short-context variant for daily data, shaped like IBM's r2.1 90-30.
    "r2.1-90-30": dict(
        context_length=90,
        prediction_length=30,
        patch_length=10,
        patch_stride=10,
        d_model=64,
        num_layers=2,
        adaptive_patching_levels=2,
        decoder_num_layers=2,
        decoder_d_model=64,
        expansion_factor=2,
    ),
}
