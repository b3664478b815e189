"""The fenced examples of README.md and docs/*.md, for the tests that keep them true (test_docs, test_stop)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


@dataclass
class Example:
    document: Path
    language: str
    text: str
    heading: str  # the section it sits in

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)} ({self.heading}, {self.language or 'plain'})"

    def commands(self) -> list[str]:
        """Shell commands, one per logical line (backslash continuations joined), comments dropped."""
        joined = self.text.replace("\\\n", " ")
        out = []
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                out.append(line)
        return out


def examples(language: str | None = None) -> list[Example]:
    found = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in FENCE.finditer(text):
            headings = re.findall(r"^#+ (.*)$", text[: match.start()], re.M)
            example = Example(document, match.group(1), match.group(2), headings[-1] if headings else "")
            if language is None or example.language == language:
                found.append(example)
    return found


def section(document: Path, heading: str) -> list[Example]:
    return [e for e in examples() if e.document == document and e.heading == heading]
