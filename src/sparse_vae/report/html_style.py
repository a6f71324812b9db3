"""How report.html looks: its style sheet (the verdict colours come from ``scorecard_html``) and
the small script that opens the closed section around a linked element."""

from sparse_vae.report.scorecard_html import SCORECARD_CSS

__all__ = ["OPEN_TARGET", "PAGE_CSS"]

PAGE_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:10px auto;max-width:1360px;
     padding:0 16px;color:#1b1b1b;line-height:1.45}
h1{margin:4px 0 6px;font-size:24px} h1 .sub{font-size:13px;font-weight:normal;color:#666;margin-left:10px}
h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
#talk h2{margin:10px 0 2px;font-size:19px} .talk-kind h3{margin:4px 0 3px;font-size:15px}
.talk-kind p.muted{margin:4px 0 8px} .cards{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.cards figure{margin:0;flex:0 1 auto;max-width:calc(33.3% - 8px)} .cards.full figure{max-width:100%}
.cards figure img{display:block;max-width:100%;height:auto} .cards figcaption{font-size:12px}
details.more{margin:8px 0;border:1px solid #e2e2e2;border-radius:6px;padding:2px 12px}
details.more>summary{cursor:pointer;font-size:16px;font-weight:600;padding:6px 0}
details.more>summary .muted{font-weight:normal}
details.more h2{margin-top:12px} tr.target td{outline:2px solid #0072B2}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f2f2f2} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%}
figure{margin:16px 0 28px} figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:13px;color:#444;max-width:1000px}
blockquote{color:#555;border-left:4px solid #ccc;margin:6px 0;padding-left:10px;font-style:italic}
.muted{color:#666;font-size:13px} nav ul{columns:3;font-size:13px;margin:4px 0}
#answers h2{margin-top:12px} #answers h3{margin:10px 0 2px;font-size:16px}
table.answers{font-size:12.5px;margin:2px 0 6px} table.answers td,table.answers th{padding:3px 7px;line-height:1.3}
table.answers th.q{font-weight:normal;min-width:170px;background:#fafafa}
.o{font-weight:600;padding:0 3px;border-radius:3px} .o.a-better{background:#cdeccd} .o.b-better{background:#f6d0d0}
.o.overlap{background:#ececec} .o.none{background:#eee;color:#666} .o.failed{background:#f8d3d3;color:#900}
.o.same{background:#dcecf7} .o.unstable{background:#ffe0b8}
a.panel{font-size:11.5px;text-decoration:none;white-space:nowrap}
ul.headline{margin:4px 0 8px;padding-left:20px;font-size:14px} ul.headline li{margin:2px 0}
""" + SCORECARD_CSS

#: opens the <details> around a linked element (a scorecard cell links into the closed verdict table).
OPEN_TARGET = """<script>
function openTarget(){var id=decodeURIComponent(location.hash.slice(1));if(!id)return;
var el=document.getElementById(id);if(!el)return;
for(var p=el.parentElement;p;p=p.parentElement){if(p.tagName==='DETAILS')p.open=true;}
el.classList.add('target');el.scrollIntoView();}
window.addEventListener('hashchange',openTarget);window.addEventListener('load',openTarget);
</script>"""
