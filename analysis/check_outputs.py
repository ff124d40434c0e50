"""CI check: each named figure has a non-empty PNG and a Markdown table with
at least one data row. usage: check_outputs.py FIGURES_DIR NAME [NAME ...]"""
import sys
from pathlib import Path

folder = Path(sys.argv[1])
bad = []
for name in sys.argv[2:]:
    png, md = folder / f"{name}.png", folder / f"{name}.md"
    if not png.exists() or png.stat().st_size < 1000 or png.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        bad.append(f"{png}: missing or not a PNG")
    rows = [l for l in md.read_text().splitlines() if l.startswith("|")] if md.exists() else []
    if len(rows) < 3:
        bad.append(f"{md}: missing or without data rows")
if bad:
    sys.exit("\n".join(bad))
print(f"{len(sys.argv) - 2} outputs checked in {folder}")
