"""Reading the LOCOMO file (never copied into this repository; pass its path)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "locomo_dev.json"


@dataclass(frozen=True)
class Turn:
    sample_id: str
    session: int
    date: str
    speaker: str
    dia_id: str
    text: str
    caption: str | None

    @property
    def content(self) -> str:
        """The stored text: ``"<speaker>: <text>"`` plus the shared image's caption."""
        base = f"{self.speaker}: {self.text}"
        return f"{base} [shares {self.caption}]" if self.caption else base


def load(path: Path | str = DEFAULT_PATH) -> list[dict[str, Any]]:
    return json.loads(Path(path).read_text())


def turns(sample: dict[str, Any]) -> Iterator[Turn]:
    conversation = sample["conversation"]
    sessions = sorted(int(k.split("_")[1]) for k in conversation if k.startswith("session_") and k.count("_") == 1)
    for number in sessions:
        date = conversation.get(f"session_{number}_date_time", "")
        for turn in conversation[f"session_{number}"]:
            yield Turn(
                sample["sample_id"],
                number,
                date,
                turn["speaker"],
                turn["dia_id"],
                turn["text"],
                turn.get("blip_caption"),
            )
