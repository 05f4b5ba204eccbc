"""The correlation core: pure and synchronous. Time comes in with the calls; effects go out.

Nothing here (but `correlate.store`) does I/O, reads a clock, logs or counts metrics.
"""

from correlate.engine import Counts, Effects, Engine, EngineConfig

__all__ = ["Counts", "Effects", "Engine", "EngineConfig"]
