#!/usr/bin/env python
"""Screenshot a report.html in headless chromium, to check by eye that it renders with its images.

    python tests/render_report.py --out shot.png                  # builds a report from fake runs
    python tests/render_report.py --html results/report/report.html --out shot.png
    python tests/render_report.py --html report.html --first-screen     # where the answers lie on screen

Without --html, a small study of hand-made runs (tests/test_report.py's helpers) is written to a
temporary folder and reported first. Needs /usr/bin/chromium (Debian: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import json
import re
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


#: measures, in the rendered page, where the opening answers lie (CSS pixels from the page top).
_LAYOUT_SCRIPT = """<script>
window.addEventListener('load', function () {
  function box(sel) { var e = document.querySelector(sel); if (!e) return null;
    var r = e.getBoundingClientRect(); return {top: r.top + scrollY, bottom: r.bottom + scrollY,
    left: r.left, right: r.right, text: e.innerText}; }
  var out = {viewport: [innerWidth, innerHeight], headline: box('#answers ul.headline'),
    first_table: box('#answers table.answers'), answers: box('#answers')};
  var pre = document.createElement('pre'); pre.id = 'layout-json';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


def first_screen_layout(html: Path, width: int = 1400, height: int = 900, timeout: float = 90) -> dict:
    """Boxes (top, bottom, text) of the answers' headline and first table as Chromium lays out
    `html` in a width x height window: what a reader sees before scrolling."""
    page = html.read_text(encoding="utf-8").replace("</body>", _LAYOUT_SCRIPT + "</body>", 1)
    with tempfile.TemporaryDirectory(prefix="chromium-layout-") as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(page, encoding="utf-8")
        cmd = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={Path(tmp) / 'profile'}", f"--window-size={width},{height}",
            "--virtual-time-budget=5000", "--dump-dom", probe.as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    found = re.search(r'<pre id="layout-json">(.*?)</pre>', proc.stdout, re.S)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"chromium --dump-dom failed ({proc.returncode}): {proc.stderr[-2000:]}")
    import html as html_lib

    return json.loads(html_lib.unescape(found.group(1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", help="an existing report.html (default: build one from fake runs)")
    parser.add_argument("--out", help="PNG to write")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--first-screen", action="store_true",
                        help="print where the answers lie in a 1400x900 window (JSON) instead")
    args = parser.parse_args(argv)
    if args.first_screen:
        print(json.dumps(first_screen_layout(Path(args.html)), indent=1))
        return 0
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found (apt-get install chromium)")
    if not args.out:
        parser.error("--out is required (or --first-screen with --html)")
    with tempfile.TemporaryDirectory(prefix="render-report-") as tmp:
        html = Path(args.html) if args.html else build_fake_report(Path(tmp))
        screenshot(html, Path(args.out), args.width, args.height)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
