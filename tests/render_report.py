#!/usr/bin/env python
"""Screenshot a report.html in headless chromium, to check by eye that it renders with its images.

    python tests/render_report.py --out shot.png                  # builds a report from fake runs
    python tests/render_report.py --html results/report/report.html --out shot.png

Without --html, a small study of hand-made runs (tests/test_report.py's helpers) is written to a
temporary folder and reported first. Needs /usr/bin/chromium (Debian: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def build_fake_report(root: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_report import make_study  # noqa: E402  (the test helpers)

    from sparse_vae.report import build_report

    paths, study = make_study(root)
    build_report(paths, study, root / "report")
    return root / "report" / "report.html"


def screenshot(html: Path, out: Path, width: int = 1400, height: int = 4000, timeout: float = 90) -> None:
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={out}",
            f"--window-size={width},{height}", html.resolve().as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not out.is_file():
        raise SystemExit(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", help="an existing report.html (default: build one from fake runs)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=4000)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="render-report-") as tmp:
        html = Path(args.html) if args.html else build_fake_report(Path(tmp))
        screenshot(html, Path(args.out), args.width, args.height)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
