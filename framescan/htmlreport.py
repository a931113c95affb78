"""HTML views of reports for a human reviewer, as self-contained files that open offline.

``clip_page`` / ``run_page``: one page for one clip or one section per clip (``framescan scan
--html``, the service's ``report.html``): the decision and its reasons first, the clip's facts
and coverage warnings, the risk timeline as inline SVG (``timeline_svg``), the evidence frames
(veiled until clicked), known-content matches, on-screen text with the matched term marked, and
the models and policy used. ``queue_page``: the archive's review queue (``framescan export
--format html``). The pages load nothing from the network: styles and the one script are inline,
images are ``data:`` URIs or relative paths, and a Content-Security-Policy forbids anything else.

Standard library only.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .report import Report

#: ``img-src`` allows data URIs and same-origin files (the archive queue's relative thumbnails).
CSP = (
    "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)
#: Colours of the categories in the timeline (as the boxes on evidence frames: framescan.evidence).
COLOURS = {
    "sexual": "#e6286e",
    "violence": "#f07800",
    "hate": "#963cdc",
    "bullying": "#0096dc",
    "extremism": "#c81414",
}
DECISION_COLOURS = {"block": "#b00020", "review": "#b36b00", "allow": "#1b7f3b", None: "#555555"}

_STYLE = """
:root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1d1d1f; }
body { margin: 0 auto; max-width: 1100px; padding: 16px 24px 48px; background: #fafafa; }
h1 { font-size: 20px; margin: 8px 0 16px; }
h2 { font-size: 18px; margin: 0 0 8px; word-break: break-all; }
h3 { font-size: 15px; margin: 20px 0 8px; }
section.clip { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 16px 20px; margin: 0 0 24px; }
.decision { display: inline-block; color: #fff; font-weight: 700; font-size: 22px; padding: 4px 14px;
  border-radius: 6px; letter-spacing: .04em; }
ul.reasons { margin: 8px 0; padding-left: 20px; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border-bottom: 1px solid #eee; padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
th { color: #666; font-weight: 600; }
.warn { background: #fff4e0; border-left: 4px solid #b36b00; padding: 6px 10px; margin: 6px 0; font-size: 13px; }
.muted { color: #777; font-size: 12px; }
svg.timeline { display: block; background: #fff; border: 1px solid #eee; margin: 4px 0; }
.frames { display: flex; flex-wrap: wrap; gap: 12px; }
figure.evidence { margin: 0; width: 240px; font-size: 12px; }
figure.evidence button { padding: 0; border: 0; background: #222; cursor: pointer; display: block; overflow: hidden;
  border-radius: 4px; }
figure.evidence img { display: block; max-width: 240px; max-height: 240px; transition: filter .15s; }
figure.evidence button.veiled img { filter: blur(14px) saturate(.4); }
figure.evidence button { position: relative; }
figure.evidence button.veiled::after { content: "click to reveal"; position: absolute; left: 0; right: 0; bottom: 6px;
  color: #fff; font-size: 12px; text-shadow: 0 0 3px #000; }
figure.evidence figcaption { padding: 4px 0; }
mark { background: #ffe066; padding: 0 2px; }
table.queue td { padding: 6px 10px 6px 0; }
table.queue td.thumbs { white-space: nowrap; }
table.queue img { height: 72px; margin-right: 4px; border-radius: 3px; filter: blur(8px); }
a { color: #0b57d0; }
nav.pages a, nav.pages span { margin-right: 8px; }
"""

_SCRIPT = """
document.addEventListener('click', function (ev) {
  var b = ev.target.closest && ev.target.closest('button.frame');
  if (!b) return;
  b.classList.toggle('veiled');
  b.setAttribute('aria-pressed', b.classList.contains('veiled') ? 'false' : 'true');
});
"""

esc = html.escape


def _doc(title: str, body: str, script: bool = True) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n"
        + (f"<script>{_SCRIPT}</script>" if script else "")
        + "</body></html>\n"
    )


def _num(v: Any, digits: int = 2, unit: str = "") -> str:
    if v is None:
        return "?"
    return f"{float(v):.{digits}f}{unit}"


# --------------------------------------------------------------------------- the timeline

_W, _LEFT, _RIGHT, _ROW, _TOP, _AXIS = 960, 96, 16, 84, 8, 22


def timeline_svg(report: dict[str, Any]) -> str:
    """The risk timeline of one report as inline SVG: one row per category with a signal, its
    score on every scored frame (``report["timeline"]``, when the scan kept it), the review and
    block thresholds, the segments shaded, evidence items as dots, known-content matches and
    on-screen text marked at their times. Elements carry ``data-*`` attributes (category, start,
    end, time) for tools and tests."""
    cats = [c for c, r in (report.get("categories") or {}).items() if r.get("signals")]
    duration = _duration(report)
    tl = report.get("timeline") or None
    policy = (report.get("policy") or {}).get("categories") or {}
    plot_w = _W - _LEFT - _RIGHT
    height = _TOP + len(cats) * _ROW + _AXIS

    def x(t: float) -> float:
        return _LEFT + plot_w * min(max(float(t) / duration, 0.0), 1.0)

    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}" role="img" data-duration="{duration:.3f}" data-left="{_LEFT}" '
        f'data-plot-width="{plot_w}"><title>risk timeline, 0 to {duration:.2f} s</title>'
    ]
    known = [m for m in ((report.get("known_content") or {}).get("matches") or [])]
    for row, cat in enumerate(cats):
        top = _TOP + row * _ROW
        h = _ROW - 14

        def y(score: float, top: int = top, h: int = h) -> float:
            return top + h * (1.0 - min(max(float(score), 0.0), 1.0))

        colour = COLOURS.get(cat, "#444")
        r = report["categories"][cat]
        parts.append(f'<g class="category" data-category="{esc(cat)}">')
        parts.append(f'<rect x="{_LEFT}" y="{top}" width="{plot_w}" height="{h}" fill="#f7f7f7"/>')
        parts.append(
            f'<text x="{_LEFT - 8}" y="{top + h / 2 + 4:.1f}" text-anchor="end" font-size="12" fill="{colour}" '
            f'font-weight="600">{esc(cat)}</text>'
        )
        for seg in r.get("segments") or []:
            x1, x2 = x(seg["start"]), x(seg["end"])
            parts.append(
                f'<rect class="segment" data-category="{esc(cat)}" data-start="{seg["start"]}" data-end="{seg["end"]}" '
                f'x="{x1:.2f}" y="{top}" width="{max(x2 - x1, 1.0):.2f}" height="{h}" fill="{colour}" '
                f'fill-opacity="0.18"><title>{esc(cat)} segment {seg["start"]:.2f}-{seg["end"]:.2f} s, '
                f"peak {seg['peak']:.2f}</title></rect>"
            )
        rule = policy.get(cat) or {}
        for name, dash in (("review", "4 3"), ("block", "")):
            if name in rule:
                yy = y(rule[name])
                parts.append(
                    f'<line class="threshold" data-threshold="{name}" x1="{_LEFT}" x2="{_LEFT + plot_w}" '
                    f'y1="{yy:.1f}" y2="{yy:.1f}" stroke="#999" stroke-width="1"'
                    + (f' stroke-dasharray="{dash}"' if dash else "")
                    + f"><title>{name} threshold {rule[name]}</title></line>"
                )
        if tl and cat in (tl.get("scores") or {}):
            pts = " ".join(f"{x(t):.1f},{y(s):.1f}" for t, s in zip(tl["time"], tl["scores"][cat]))
            parts.append(
                f'<polyline class="scores" data-category="{esc(cat)}" points="{pts}" fill="none" '
                f'stroke="{colour}" stroke-width="1.5"/>'
            )
        for e in report.get("evidence") or []:
            if e["category"] == cat:
                parts.append(
                    f'<circle class="evidence" data-time="{e["time"]}" cx="{x(e["time"]):.1f}" cy="{y(e["weighted"]):.1f}" '
                    f'r="2.5" fill="{colour}"><title>{e["time"]:.2f} s {esc(e["label"])} {e["weighted"]:.2f}</title></circle>'
                )
                if e.get("text") is not None:
                    parts.append(
                        f'<path class="text-mark" data-time="{e["time"]}" d="M{x(e["time"]):.1f} {top + h} l-4 8 h8 z" '
                        f'fill="{colour}"><title>on-screen text at {e["time"]:.2f} s: {esc(e["text"])}</title></path>'
                    )
        for m in known:
            if m.get("category") != cat:
                continue
            for s in m.get("segments") or []:
                x1, x2 = x(s["start"]), x(s["end"])
                parts.append(
                    f'<rect class="known" data-start="{s["start"]}" data-end="{s["end"]}" x="{x1:.2f}" '
                    f'y="{top + h - 6}" width="{max(x2 - x1, 2.0):.2f}" height="6" fill="#000">'
                    f"<title>known content: {esc(str(m.get('bank')))} / {esc(str(m.get('item')))} "
                    f"{s['start']:.2f}-{s['end']:.2f} s</title></rect>"
                )
        parts.append("</g>")
    axis_y = _TOP + len(cats) * _ROW
    step = _tick_step(duration)
    t = 0.0
    while t <= duration + 1e-9:
        parts.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{axis_y - 14}" y2="{axis_y - 10}" stroke="#888"/>'
            f'<text x="{x(t):.1f}" y="{axis_y + 2}" font-size="11" text-anchor="middle" fill="#666">{t:g} s</text>'
        )
        t += step
    parts.append("</svg>")
    return "".join(parts)


def _duration(report: dict[str, Any]) -> float:
    cov = report.get("coverage") or {}
    clip = report.get("clip") or {}
    candidates = [cov.get("claimed_seconds"), cov.get("decoded_seconds"), clip.get("duration")]
    tl = report.get("timeline") or {}
    candidates += [max(tl.get("time") or [0.0])]
    candidates += [s["end"] for s in report.get("segments") or []]
    d = max((float(c) for c in candidates if c), default=0.0)
    return d if d > 0 else 1.0


def _tick_step(duration: float) -> float:
    raw = duration / 10
    base = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * base for m in (1, 2, 5, 10) if m * base >= raw)


# --------------------------------------------------------------------------- one clip


def _highlight(text: str, term: str) -> str:
    """``text`` escaped, with ``term`` (case-insensitive) in ``<mark>``."""
    if not term:
        return esc(text)
    out, pos = [], 0
    for m in re.finditer(re.escape(term), text, flags=re.IGNORECASE):
        out += [esc(text[pos : m.start()]), f"<mark>{esc(m.group(0))}</mark>"]
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def clip_section(report: Report, image_src: Callable[[int], str | None], anchor: str = "clip") -> str:
    """One clip's section. ``image_src(frame_index)``: the URL of that evidence frame (None: none)."""
    d = report.to_dict()
    decision = d["decision"] if d["status"] != "error" else None
    label = (decision or "error").upper()
    out = [
        f'<section class="clip" id="{esc(anchor)}" data-decision="{esc(label.lower())}">',
        f"<h2>{esc(d['source'])}</h2>",
        f'<div><span class="decision" data-role="decision" style="background:{DECISION_COLOURS.get(decision)}">'
        f'{esc(label)}</span> <span class="muted">status: {esc(d["status"])}</span></div>',
    ]
    if d["status"] == "error":
        err = d["error"] or {}
        out.append(f'<p class="warn">[{esc(str(err.get("code")))}] {esc(str(err.get("message")))}</p></section>')
        return "\n".join(out)
    if d["reasons"]:
        out.append('<ul class="reasons">' + "".join(f"<li>{esc(r)}</li>" for r in d["reasons"]) + "</ul>")
    else:
        out.append('<p class="muted">no category reached its review threshold</p>')
    out.append(_facts(d))
    for w in d["warnings"]:
        out.append(f'<div class="warn">{esc(w)}</div>')
    out.append("<h3>Risk timeline</h3>")
    if not d.get("timeline"):
        out.append(
            '<p class="muted">per-frame scores were not kept in this report (scan with --timeline or --html); '
            "segments and evidence are shown</p>"
        )
    out.append(timeline_svg(d))
    out.append(
        '<p class="muted">shaded: segments; dashed line: review threshold; solid line: block threshold; '
        "dots: evidence; black bars: known-content matches; triangles: on-screen text</p>"
    )
    out.append(_frames(d, image_src))
    out.append(_known(d))
    out.append(_texts(d))
    out.append(_setup(d))
    out.append("</section>")
    return "\n".join(out)


def _facts(d: dict[str, Any]) -> str:
    clip, cov, sampling = d["clip"] or {}, d["coverage"] or {}, d["sampling"] or {}
    rows = [
        (
            "clip",
            f"{clip.get('display_width')}x{clip.get('display_height')} {clip.get('codec')}, "
            f"{_num(clip.get('duration'), 1, ' s')}, {_num(clip.get('fps'), 2)} fps",
        ),
        (
            "read",
            f"{cov.get('read_packets')}/{cov.get('claimed_frames') or '?'} frames ({cov.get('decoded_frames')} decoded), "
            f"{_num(cov.get('decoded_seconds'), 1)}/{_num(cov.get('claimed_seconds'), 1)} s",
        ),
        ("scored", f"{cov.get('scored_frames')} frames ({_sampling(sampling)})"),
    ]
    if cov.get("stopped_early"):
        rows.append(("stopped", f"at {_num(cov.get('stopped_at'))} s: {cov.get('stopped_reason')}"))
    rows.append(
        (
            "categories",
            ", ".join(
                f"{c} {_num(r['score'])} {r['decision']}" if r.get("signals") else f"{c}: no signal configured"
                for c, r in d["categories"].items()
            ),
        )
    )
    return (
        '<table class="facts">'
        + "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in rows)
        + "</table>"
    )


def _sampling(s: dict[str, Any]) -> str:
    mode = s.get("mode")
    if mode == "fps":
        return f"{s.get('fps'):g} fps"
    if mode == "every":
        return f"every {s.get('every')} frames"
    extra = ", ".join(f"{k} {v}" for k, v in s.items() if k != "mode")
    return f"{mode}{': ' + extra if extra else ''}"


def _frames(d: dict[str, Any], image_src: Callable[[int], str | None]) -> str:
    by_frame: dict[int, list[dict[str, Any]]] = {}
    for e in d["evidence"]:
        by_frame.setdefault(e["frame_index"], []).append(e)
    figs = []
    for index, items in sorted(by_frame.items(), key=lambda kv: kv[1][0]["time"]):
        src = image_src(index)
        if src is None:
            continue
        labels = ", ".join(sorted({f"{e['category']}: {e['label']} {e['score']:.2f}" for e in items}))
        figs.append(
            f'<figure class="evidence" data-frame="{index}"><button class="frame veiled" type="button" '
            f'aria-pressed="false" title="click to reveal or veil"><img src="{esc(src)}" '
            f'alt="evidence frame {index} at {items[0]["time"]:.2f} s"></button>'
            f"<figcaption>{items[0]['time']:.2f} s (frame {index})<br>{esc(labels)}</figcaption></figure>"
        )
    if not figs:
        return (
            '<h3>Evidence frames</h3><p class="muted">no evidence frames (none kept, or evidence capture was off)</p>'
        )
    return (
        f'<h3>Evidence frames ({len(figs)})</h3><p class="muted">veiled; click a frame to reveal it '
        "(sexual content is also pixelated in the image itself unless the scan used --no-blur)</p>"
        f'<div class="frames">{"".join(figs)}</div>'
    )


def _known(d: dict[str, Any]) -> str:
    matches = (d.get("known_content") or {}).get("matches") or []
    if not matches:
        return ""
    rows = "".join(
        f"<tr><td>{esc(str(m.get('bank')))}</td><td>{esc(str(m.get('item')))}</td><td>{esc(str(m.get('category')))}</td>"
        f"<td>{esc(str(m.get('decision')))}</td><td>{_num(m.get('query_match_percent'), 0, '%')}</td><td>"
        + esc(", ".join(f"{s['start']:.2f}-{s['end']:.2f} s" for s in m.get("segments") or []))
        + "</td></tr>"
        for m in matches
    )
    return (
        "<h3>Known-content matches</h3><table><tr><th>bank</th><th>item</th><th>category</th><th>decision</th>"
        f"<th>clip matched</th><th>times</th></tr>{rows}</table>"
    )


def _texts(d: dict[str, Any]) -> str:
    seen: set[tuple[str, str]] = set()
    rows = []
    for e in sorted(d["evidence"], key=lambda e: e["time"]):
        if e.get("text") is None or (e["text"], e["label"]) in seen:
            continue
        seen.add((e["text"], e["label"]))
        term = e["label"].split(":", 1)[-1]
        rows.append(
            f"<tr><td>{e['time']:.2f} s</td><td>{esc(e['category'])}</td><td>{esc(e['label'])}</td>"
            f'<td class="ocr-text">{_highlight(e["text"], term)}</td></tr>'
        )
    if not rows:
        return ""
    return (
        "<h3>On-screen text</h3><table><tr><th>time</th><th>category</th><th>list:term</th><th>text as read</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _setup(d: dict[str, Any]) -> str:
    models = "".join(
        f'<tr><td>{esc(str(m.get("name")))}</td><td class="muted">{esc(str(m.get("sha256", ""))[:16])}</td></tr>'
        for m in d["models"]
    )
    policy = d.get("policy") or {}
    rules = "".join(
        f"<tr><td>{esc(c)}</td><td>{r.get('review')}</td><td>{r.get('block')}</td><td>{r.get('min_block_frames')}</td></tr>"
        for c, r in (policy.get("categories") or {}).items()
    )
    return (
        f"<h3>Models and policy</h3><table><tr><th>model</th><th>sha256</th></tr>{models}</table>"
        f'<p class="muted">policy {esc(str(policy.get("name")))}, max gap {policy.get("max_gap")} s; '
        f"framescan {esc(d['framescan_version'])}</p>"
        f"<table><tr><th>category</th><th>review</th><th>block</th><th>min block frames</th></tr>{rules}</table>"
    )


def embedded(report: Report) -> Callable[[int], str | None]:
    """``image_src`` for a self-contained page: the report's evidence frames as data URIs."""
    import base64

    uris = {i: "data:image/jpeg;base64," + base64.b64encode(b).decode("ascii") for i, b in report.images.items()}
    return uris.get


def run_page(reports: Sequence[Report], title: str = "framescan report") -> str:
    """One self-contained page, one section per clip (evidence frames embedded)."""
    sections = [clip_section(r, embedded(r), f"clip-{i}") for i, r in enumerate(reports)]
    head = f"<h1>{esc(title)}</h1>"
    if len(reports) > 1:
        head += (
            "<ol>"
            + "".join(
                f'<li><a href="#clip-{i}">{esc(r.source)}</a>: {esc(str(r.decision or "error").upper())}</li>'
                for i, r in enumerate(reports)
            )
            + "</ol>"
        )
    return _doc(title, head + "\n".join(sections))


def clip_page(report: Report, image_src: Callable[[int], str | None] | None = None, back: str | None = None) -> str:
    """One clip's page (evidence frames embedded unless ``image_src`` says where they are)."""
    nav = f'<p><a href="{esc(back)}">&larr; review queue</a></p>' if back else ""
    return _doc(f"framescan: {report.source}", nav + clip_section(report, image_src or embedded(report)))


# --------------------------------------------------------------------------- the archive's review queue


def queue_page(
    rows: Iterable[dict[str, Any]], page: int, pages: int, total: int, page_name: Callable[[int], str], title: str
) -> str:
    """One page of the review queue. ``rows``: ``{path, decision, state, max_score, max_category,
    reasons, error, link, thumbs}`` (``link``: the clip's page; ``thumbs``: relative image paths)."""
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="muted">{total} clips, page {page + 1} of {pages}; '
        "ordered by risk: block, review, allow, then clips that could not be scanned</p>",
    ]
    trs = []
    for r in rows:
        decision = r.get("decision")
        label = (decision or r.get("state") or "?").upper()
        colour = DECISION_COLOURS.get(decision, DECISION_COLOURS[None])
        why = r.get("reasons") or ([r["error"]] if r.get("error") else [])
        thumbs = "".join(f'<img src="{esc(t)}" alt="evidence">' for t in r.get("thumbs") or [])
        name = f'<a href="{esc(r["link"])}">{esc(r["path"])}</a>' if r.get("link") else esc(r["path"])
        score = "" if r.get("max_score") is None else f"{r.get('max_category')} {r['max_score']:.2f}"
        trs.append(
            f'<tr class="item" data-decision="{esc(label.lower())}"><td><span class="decision" '
            f'style="background:{colour};font-size:13px">{esc(label)}</span></td><td>{name}<div class="muted">'
            f'{esc(score)}</div></td><td>{"<br>".join(esc(w) for w in why[:3])}</td><td class="thumbs">{thumbs}</td></tr>'
        )
    body.append(
        '<table class="queue"><tr><th>decision</th><th>clip</th><th>why</th><th>evidence (blurred)</th></tr>'
        + "".join(trs)
        + "</table>"
    )
    if pages > 1:
        links = [
            f"<span>{i + 1}</span>" if i == page else f'<a href="{esc(page_name(i))}">{i + 1}</a>' for i in range(pages)
        ]
        body.append(f'<nav class="pages">{"".join(links)}</nav>')
    return _doc(title, "\n".join(body), script=False)
