#!/usr/bin/env python
"""Screenshot a report.html in headless chromium, to check by eye that it renders with its images.

    python tests/render_report.py --out shot.png                  # builds a report from fake runs
    python tests/render_report.py --html results/report/report.html --out shot.png
    python tests/render_report.py --html report.html --first-screen     # what the first screen shows (JSON)

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
    from test_report import make_study, write_retina_control  # noqa: E402  (the test helpers)

    from sparse_vae.report import build_report

    paths, study = make_study(root)
    build_report(paths, study, root / "report", retina_control=write_retina_control(root))
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


#: measures, in the rendered page, what a reader sees before scrolling (CSS pixels from the page
#: top): the scorecard, the first of the talk's figures, where every scorecard link points, and
#: whether the page is wider than the window.
_LAYOUT_SCRIPT = """<script>
window.addEventListener('load', function () {
  function box(e) { if (!e) return null; var r = e.getBoundingClientRect();
    return {top: r.top + scrollY, bottom: r.bottom + scrollY, left: r.left, right: r.right}; }
  var card = document.getElementById('scorecard-table');
  var links = Array.prototype.map.call(document.querySelectorAll('#scorecard a[href]'), function (a) {
    var id = decodeURIComponent(a.getAttribute('href').replace(/^#/, ''));
    return {href: a.getAttribute('href'), resolves: a.getAttribute('href').charAt(0) === '#' &&
            document.getElementById(id) !== null}; });
  var cells = Array.prototype.map.call(document.querySelectorAll('#scorecard-table td.sc'), function (td) {
    return {cls: td.className, linked: td.querySelector('a[href]') !== null}; });
  var first = document.querySelector('#talk figure img');
  var out = {viewport: [innerWidth, innerHeight], scorecard: box(card), first_figure: box(first),
    first_figure_loaded: first ? first.naturalWidth > 0 : false,
    after_title: (function () { var h = document.querySelector('h1'); var n = h && h.nextElementSibling;
      return n ? (n.id || n.tagName) : null; })(),
    links: links, cells: cells, page_width: document.documentElement.scrollWidth};
  var pre = document.createElement('pre'); pre.id = 'layout-json';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


def first_screen_layout(html: Path, width: int = 1400, height: int = 900, timeout: float = 90,
                        inject: str = "") -> dict:
    """What Chromium lays out in a width x height window (``_LAYOUT_SCRIPT``'s measurements);
    `inject` is HTML put right after the title (a test pushes the scorecard down with it)."""
    page = html.read_text(encoding="utf-8").replace("</body>", _LAYOUT_SCRIPT + "</body>", 1)
    if inject:
        page = page.replace("</h1>", "</h1>" + inject, 1)
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


def first_screen_problems(layout: dict, height: int = 900) -> list[str]:
    """What is wrong with the first screen (empty: nothing): the scorecard must be the first thing
    after the title and lie wholly inside the window, the first talk figure must start inside it,
    every scorecard link must resolve, every cell carry a verdict class, and nothing may overflow
    the window sideways."""
    # page coordinates against the nominal window height: the page uses no vh units, so its layout
    # depends on the width alone (headless Chromium's innerHeight under --dump-dom is below the window's)
    screen = height
    problems = []
    card, fig = layout["scorecard"], layout["first_figure"]
    if layout["after_title"] != "scorecard":
        problems.append(f"the first element after the title is {layout['after_title']}, not the scorecard")
    if card is None or card["bottom"] > screen or card["top"] < 0:
        problems.append(f"scorecard not inside the first screen ({card}, screen {screen}px)")
    if fig is None or fig["top"] >= screen:
        problems.append(f"first figure not on the first screen ({fig})")
    elif not layout["first_figure_loaded"]:
        problems.append("first figure did not load")
    bad = [link["href"] for link in layout["links"] if not link["resolves"]]
    if bad or not layout["links"]:
        problems.append(f"scorecard links that resolve to nothing: {bad or 'no links at all'}")
    unclassed = [c["cls"] for c in layout["cells"] if " v-" not in f" {c['cls']}" and " na" not in f" {c['cls']}"]
    unlinked = [c["cls"] for c in layout["cells"] if " v-" in f" {c['cls']}" and not c["linked"]]
    if unclassed or unlinked or not layout["cells"]:
        problems.append(f"cells without a verdict class {unclassed} or without a link {unlinked}")
    if layout["page_width"] > layout["viewport"][0]:
        problems.append(f"horizontal overflow: page {layout['page_width']}px in a {layout['viewport'][0]}px window")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", help="an existing report.html (default: build one from fake runs)")
    parser.add_argument("--out", help="PNG to write")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--first-screen", action="store_true",
                        help="print what a 1400x900 window shows first (JSON) and its problems instead")
    args = parser.parse_args(argv)
    if args.first_screen:
        layout = first_screen_layout(Path(args.html))
        print(json.dumps(layout, indent=1))
        problems = first_screen_problems(layout)
        print("\n".join(problems) or "first screen: no problems")
        return 1 if problems else 0
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
