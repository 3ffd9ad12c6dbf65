"""What a process loads to search lives as long as the process: after its first search it is
frozen out of Python's full collections (``server/engine/_heap.py``), which took 65-80 ms and
were the searches' outliers (~90 ms among 10-20 ms ones)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import gc, json, sys, tempfile
from pathlib import Path
from memorch import Memory, MemoryConfig
with Memory(MemoryConfig(data_dir=Path(sys.argv[1]), graph="off")) as memory:
    memory.add("I play the cello on Sundays", user_id="u", infer=False)
    before = gc.get_freeze_count()
    memory.search("cello", user_id="u")
    print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}))
"""


def test_the_first_search_freezes_what_the_process_loaded(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "data")], capture_output=True, text=True, check=True
    )
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["before"] == 0  # opening and adding freeze nothing
    # the search froze the modules and tables it loaded: the collections walk what is left
    assert counts["frozen"] > 50_000
    assert counts["tracked"] < counts["frozen"] / 10
