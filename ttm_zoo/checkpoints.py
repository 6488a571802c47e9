"""IBM's published TTM checkpoints: every repository, branch, context length, horizon and R3 residual context.

The table follows granite-tsfm 0.3.11's list of released revisions entry by entry (tests/test_selection.py checks
it against the installed package). Each row is one branch of one Hub repository; `Variant.name` is IBM's name of
the variant, `<context>-<horizon>[-ft][-l1][-dec-<residual context>][-lite]-<release>`, which is also the branch
except for the two repositories' first variants (`main`) and r1's 1024-96 (`1024_96_v1`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    """A checkpoint: where it is (local directory or Hub id), its revision, context length and horizon, and for
    IBM's checkpoints the release and the variant flags ("-ft": needs a frequency token, "-l1": trained with L1
    loss, "-dec-<n>": trend/residual decomposition with an n-step residual context, "-lite": R3's lite twin)."""

    model: str
    revision: str | None
    context_length: int
    prediction_length: int
    needs_freq_token: bool = False
    l1_loss: bool = False
    release: str | None = None
    residual_context_length: int | None = None
    lite: bool = False

    @property
    def decomposed(self) -> bool:
        """Whether the checkpoint forecasts trend and residual separately (IBM's "-dec-" variants)."""
        return self.residual_context_length is not None

    @property
    def name(self) -> str:
        """IBM's name of the variant, e.g. "52-16-ft-l1-r2.1" or "512-30-dec-90-lite-r3"."""
        parts = [str(self.context_length), str(self.prediction_length)]
        parts += ["ft"] * self.needs_freq_token + ["l1"] * self.l1_loss
        if self.decomposed:
            parts += ["dec", str(self.residual_context_length)]
        parts += ["lite"] * self.lite + ([self.release] if self.release else [])
        return "-".join(parts)


R1 = "ibm-granite/granite-timeseries-ttm-r1"
R2 = "ibm-granite/granite-timeseries-ttm-r2"  # r2 and r2.1
R3 = "ibm-granite/granite-timeseries-ttm-r3"
RESEARCH_R2 = "ibm-research/ttm-research-r2"
RESEARCH_R3 = "ibm-research/ttm-r3"


def _ibm(
    model: str,
    revision: str,
    release: str,
    context_length: int,
    prediction_length: int,
    residual_context_length: int | None = None,
    name: str | None = None,
) -> Variant:
    """One row of the table; the flags are read from the variant's name (the branch unless given)."""
    tags = (name or revision).split("-")
    return Variant(
        model,
        revision,
        context_length,
        prediction_length,
        needs_freq_token="ft" in tags,
        l1_loss="l1" in tags,
        release=release,
        residual_context_length=residual_context_length,
        lite="lite" in tags,
    )


# In granite-tsfm's order, which also breaks ties in the selection (plain before "-ft", "-ft" before "-l1").
IBM_CHECKPOINTS: tuple[Variant, ...] = (
    _ibm(R1, "main", "r1", 512, 96, name="512-96-r1"),
    _ibm(R1, "1024_96_v1", "r1", 1024, 96, name="1024-96-r1"),
    _ibm(R2, "main", "r2", 512, 96, name="512-96-r2"),
    _ibm(R2, "512-192-r2", "r2", 512, 192),
    _ibm(R2, "512-336-r2", "r2", 512, 336),
    _ibm(R2, "512-720-r2", "r2", 512, 720),
    _ibm(R2, "1024-96-r2", "r2", 1024, 96),
    _ibm(R2, "1024-192-r2", "r2", 1024, 192),
    _ibm(R2, "1024-336-r2", "r2", 1024, 336),
    _ibm(R2, "1024-720-r2", "r2", 1024, 720),
    _ibm(R2, "1536-96-r2", "r2", 1536, 96),
    _ibm(R2, "1536-192-r2", "r2", 1536, 192),
    _ibm(R2, "1536-336-r2", "r2", 1536, 336),
    _ibm(R2, "1536-720-r2", "r2", 1536, 720),
    _ibm(R2, "52-16-ft-r2.1", "r2.1", 52, 16),
    _ibm(R2, "52-16-ft-l1-r2.1", "r2.1", 52, 16),
    _ibm(R2, "90-30-ft-r2.1", "r2.1", 90, 30),
    _ibm(R2, "90-30-ft-l1-r2.1", "r2.1", 90, 30),
    _ibm(R2, "180-60-ft-l1-r2.1", "r2.1", 180, 60),
    _ibm(R2, "360-60-ft-l1-r2.1", "r2.1", 360, 60),
    _ibm(R2, "512-48-ft-r2.1", "r2.1", 512, 48),
    _ibm(R2, "512-48-ft-l1-r2.1", "r2.1", 512, 48),
    _ibm(R2, "512-96-ft-r2.1", "r2.1", 512, 96),
    _ibm(R2, "512-96-ft-l1-r2.1", "r2.1", 512, 96),
    _ibm(R3, "156-16-dec-52-r3", "r3", 156, 16, 52),
    _ibm(R3, "512-30-dec-90-r3", "r3", 512, 30, 90),
    _ibm(R3, "768-48-dec-512-r3", "r3", 768, 48, 512),
    _ibm(R3, "1024-48-dec-512-r3", "r3", 1024, 48, 512),
    _ibm(R3, "2048-96-r3", "r3", 2048, 96),
    _ibm(R3, "2048-720-r3", "r3", 2048, 720),
    _ibm(R3, "2560-96-r3", "r3", 2560, 96),
    _ibm(R3, "2560-720-r3", "r3", 2560, 720),
    _ibm(R3, "3072-96-r3", "r3", 3072, 96),
    _ibm(R3, "3072-720-r3", "r3", 3072, 720),
    _ibm(R3, "52-16-dec-52-r3", "r3", 52, 16, 52),
    _ibm(R3, "90-30-dec-90-r3", "r3", 90, 30, 90),
    _ibm(R3, "180-60-dec-180-r3", "r3", 180, 60, 180),
    _ibm(R3, "360-60-dec-360-r3", "r3", 360, 60, 360),
    _ibm(R3, "512-48-dec-512-r3", "r3", 512, 48, 512),
    _ibm(R3, "512-96-dec-512-r3", "r3", 512, 96, 512),
    _ibm(R3, "512-336-dec-512-r3", "r3", 512, 336, 512),
    _ibm(R3, "1024-96-r3", "r3", 1024, 96),
    _ibm(R3, "1024-720-r3", "r3", 1024, 720),
    _ibm(R3, "1536-96-r3", "r3", 1536, 96),
    _ibm(R3, "1536-720-r3", "r3", 1536, 720),
    _ibm(R3, "156-16-dec-52-lite-r3", "r3", 156, 16, 52),
    _ibm(R3, "512-30-dec-90-lite-r3", "r3", 512, 30, 90),
    _ibm(R3, "768-48-dec-512-lite-r3", "r3", 768, 48, 512),
    _ibm(R3, "1024-48-dec-512-lite-r3", "r3", 1024, 48, 512),
    _ibm(R3, "2048-96-lite-r3", "r3", 2048, 96),
    _ibm(R3, "2048-720-lite-r3", "r3", 2048, 720),
    _ibm(R3, "2560-96-lite-r3", "r3", 2560, 96),
    _ibm(R3, "2560-720-lite-r3", "r3", 2560, 720),
    _ibm(R3, "3072-96-lite-r3", "r3", 3072, 96),
    _ibm(R3, "3072-720-lite-r3", "r3", 3072, 720),
    _ibm(R3, "52-16-dec-52-lite-r3", "r3", 52, 16, 52),
    _ibm(R3, "90-30-dec-90-lite-r3", "r3", 90, 30, 90),
    _ibm(R3, "180-60-dec-180-lite-r3", "r3", 180, 60, 180),
    _ibm(R3, "360-60-dec-360-lite-r3", "r3", 360, 60, 360),
    _ibm(R3, "512-48-dec-512-lite-r3", "r3", 512, 48, 512),
    _ibm(R3, "512-96-dec-512-lite-r3", "r3", 512, 96, 512),
    _ibm(R3, "512-336-dec-512-lite-r3", "r3", 512, 336, 512),
    _ibm(R3, "1024-96-lite-r3", "r3", 1024, 96),
    _ibm(R3, "1024-720-lite-r3", "r3", 1024, 720),
    _ibm(R3, "1536-96-lite-r3", "r3", 1536, 96),
    _ibm(R3, "1536-720-lite-r3", "r3", 1536, 720),
    _ibm(RESEARCH_R2, "main", "r2", 512, 96, name="512-96-ft-r2"),
    _ibm(RESEARCH_R2, "512-192-ft-r2", "r2", 512, 192),
    _ibm(RESEARCH_R2, "512-336-ft-r2", "r2", 512, 336),
    _ibm(RESEARCH_R2, "512-720-ft-r2", "r2", 512, 720),
    _ibm(RESEARCH_R2, "1024-96-ft-r2", "r2", 1024, 96),
    _ibm(RESEARCH_R2, "1024-192-ft-r2", "r2", 1024, 192),
    _ibm(RESEARCH_R2, "1024-336-ft-r2", "r2", 1024, 336),
    _ibm(RESEARCH_R2, "1024-720-ft-r2", "r2", 1024, 720),
    _ibm(RESEARCH_R2, "1536-96-ft-r2", "r2", 1536, 96),
    _ibm(RESEARCH_R2, "1536-192-ft-r2", "r2", 1536, 192),
    _ibm(RESEARCH_R2, "1536-336-ft-r2", "r2", 1536, 336),
    _ibm(RESEARCH_R2, "1536-720-ft-r2", "r2", 1536, 720),
    _ibm(RESEARCH_R3, "156-16-dec-52-r3", "r3", 156, 16, 52),
    _ibm(RESEARCH_R3, "512-30-dec-90-r3", "r3", 512, 30, 90),
    _ibm(RESEARCH_R3, "768-48-dec-512-r3", "r3", 768, 48, 512),
    _ibm(RESEARCH_R3, "1024-48-dec-512-r3", "r3", 1024, 48, 512),
    _ibm(RESEARCH_R3, "2048-96-r3", "r3", 2048, 96),
    _ibm(RESEARCH_R3, "2048-720-r3", "r3", 2048, 720),
    _ibm(RESEARCH_R3, "2560-96-r3", "r3", 2560, 96),
    _ibm(RESEARCH_R3, "2560-720-r3", "r3", 2560, 720),
    _ibm(RESEARCH_R3, "3072-96-r3", "r3", 3072, 96),
    _ibm(RESEARCH_R3, "3072-720-r3", "r3", 3072, 720),
    _ibm(RESEARCH_R3, "52-16-dec-52-r3", "r3", 52, 16, 52),
    _ibm(RESEARCH_R3, "90-30-dec-90-r3", "r3", 90, 30, 90),
    _ibm(RESEARCH_R3, "180-60-dec-180-r3", "r3", 180, 60, 180),
    _ibm(RESEARCH_R3, "360-60-dec-360-r3", "r3", 360, 60, 360),
    _ibm(RESEARCH_R3, "512-48-dec-512-r3", "r3", 512, 48, 512),
    _ibm(RESEARCH_R3, "512-96-dec-512-r3", "r3", 512, 96, 512),
    _ibm(RESEARCH_R3, "512-336-dec-512-r3", "r3", 512, 336, 512),
    _ibm(RESEARCH_R3, "1024-96-r3", "r3", 1024, 96),
    _ibm(RESEARCH_R3, "1024-720-r3", "r3", 1024, 720),
    _ibm(RESEARCH_R3, "1536-96-r3", "r3", 1536, 96),
    _ibm(RESEARCH_R3, "1536-720-r3", "r3", 1536, 720),
    _ibm(RESEARCH_R3, "156-16-dec-52-lite-r3", "r3", 156, 16, 52),
    _ibm(RESEARCH_R3, "512-30-dec-90-lite-r3", "r3", 512, 30, 90),
    _ibm(RESEARCH_R3, "768-48-dec-512-lite-r3", "r3", 768, 48, 512),
    _ibm(RESEARCH_R3, "1024-48-dec-512-lite-r3", "r3", 1024, 48, 512),
    _ibm(RESEARCH_R3, "2048-96-lite-r3", "r3", 2048, 96),
    _ibm(RESEARCH_R3, "2048-720-lite-r3", "r3", 2048, 720),
    _ibm(RESEARCH_R3, "2560-96-lite-r3", "r3", 2560, 96),
    _ibm(RESEARCH_R3, "2560-720-lite-r3", "r3", 2560, 720),
    _ibm(RESEARCH_R3, "3072-96-lite-r3", "r3", 3072, 96),
    _ibm(RESEARCH_R3, "3072-720-lite-r3", "r3", 3072, 720),
    _ibm(RESEARCH_R3, "52-16-dec-52-lite-r3", "r3", 52, 16, 52),
    _ibm(RESEARCH_R3, "90-30-dec-90-lite-r3", "r3", 90, 30, 90),
    _ibm(RESEARCH_R3, "180-60-dec-180-lite-r3", "r3", 180, 60, 180),
    _ibm(RESEARCH_R3, "360-60-dec-360-lite-r3", "r3", 360, 60, 360),
    _ibm(RESEARCH_R3, "512-48-dec-512-lite-r3", "r3", 512, 48, 512),
    _ibm(RESEARCH_R3, "512-96-dec-512-lite-r3", "r3", 512, 96, 512),
    _ibm(RESEARCH_R3, "512-336-dec-512-lite-r3", "r3", 512, 336, 512),
    _ibm(RESEARCH_R3, "1024-96-lite-r3", "r3", 1024, 96),
    _ibm(RESEARCH_R3, "1024-720-lite-r3", "r3", 1024, 720),
    _ibm(RESEARCH_R3, "1536-96-lite-r3", "r3", 1536, 96),
    _ibm(RESEARCH_R3, "1536-720-lite-r3", "r3", 1536, 720),
)

# The branches of each repository, in table order.
IBM_REVISIONS: dict[str, list[str]] = {
    model: [v.revision for v in IBM_CHECKPOINTS if v.model == model]
    for model in dict.fromkeys(v.model for v in IBM_CHECKPOINTS)
}
