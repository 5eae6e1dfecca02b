"""Layer 5: Graph -> Graph passes only — `simplify`, `fold`, `cse`, `dce` — and the
`PassManager` that runs them (docs/passes.md); `roll_guarded_loops`, which `tg.compile`
runs on the paths it records."""

from .cse import cse
from .dce import dce
from .fold import fold
from .pass_manager import (
    DEFAULT_PIPELINE, PASSES, PassManager, PassRecord, PipelineResult, format_records,
    register_pass, run_passes,
)
from .roll import roll_guarded_loops
from .simplify import simplify

__all__ = [
    "cse", "dce", "fold", "simplify", "DEFAULT_PIPELINE", "PASSES", "PassManager", "PassRecord",
    "PipelineResult", "format_records", "register_pass", "run_passes", "roll_guarded_loops",
]
