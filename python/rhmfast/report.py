"""``report.md`` and a self-contained ``report.html`` from one list of blocks.

The report is built once as headings, paragraphs, tables and figures, then rendered
twice: Markdown (figures linked as PNG, with the SVG beside) and HTML (figures inlined as
SVG, so the file travels alone).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Report"]


@dataclass
class _Block:
    kind: str  # "h2" | "p" | "table" | "figure" | "code"
    text: str = ""
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    stem: str = ""


@dataclass
class Report:
    """A report under ``root`` (figures in ``root/figures``).

    >>> import tempfile, pathlib
    >>> r = Report(pathlib.Path(tempfile.mkdtemp()), "demo")
    >>> r.verdict("prototypical samples memorized first: rho = -0.41 [-0.45, -0.37]")
    >>> r.table(["quintile", "reproduced"], [["Q1", "0.04"], ["Q5", "0.38"]])
    >>> md, page = r.write()
    >>> "rho = -0.41" in md.read_text() and "<table>" in page.read_text()
    True
    """

    root: Path
    title: str
    verdicts: list[str] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)

    def verdict(self, line: str) -> None:
        self.verdicts.append(line)

    def heading(self, text: str) -> None:
        self.blocks.append(_Block("h2", text))

    def text(self, text: str) -> None:
        self.blocks.append(_Block("p", text))

    def code(self, text: str) -> None:
        self.blocks.append(_Block("code", text))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.blocks.append(_Block("table", headers=list(headers), rows=[[str(c) for c in r] for r in rows]))

    def figure(self, stem: str, caption: str) -> None:
        """``stem`` relative to ``root`` (e.g. ``figures/curves``), PNG and SVG written."""
        self.blocks.append(_Block("figure", caption, stem=stem))

    # -- rendering -------------------------------------------------------------------

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        if self.verdicts:
            out += ["## Verdict", ""] + [f"**{v}**" + "\n" for v in self.verdicts]
        for b in self.blocks:
            if b.kind == "h2":
                out += [f"## {b.text}", ""]
            elif b.kind == "p":
                out += [b.text, ""]
            elif b.kind == "code":
                out += ["```", b.text, "```", ""]
            elif b.kind == "table":
                out.append("| " + " | ".join(b.headers) + " |")
                out.append("|" + "---|" * len(b.headers))
                out += ["| " + " | ".join(r) + " |" for r in b.rows]
                out.append("")
            elif b.kind == "figure":
                out += [f"![{b.text}]({b.stem}.png)", "", f"*{b.text}* ([SVG]({b.stem}.svg))", ""]
        return "\n".join(out).rstrip() + "\n"

    def html(self) -> str:
        e = html.escape
        body = [f"<h1>{e(self.title)}</h1>"]
        if self.verdicts:
            body.append("<h2>Verdict</h2>")
            body += [f'<p class="verdict">{e(v)}</p>' for v in self.verdicts]
        for b in self.blocks:
            if b.kind == "h2":
                body.append(f"<h2>{e(b.text)}</h2>")
            elif b.kind == "p":
                body.append(f"<p>{_inline(b.text)}</p>")
            elif b.kind == "code":
                body.append(f"<pre>{e(b.text)}</pre>")
            elif b.kind == "table":
                head = "".join(f"<th>{e(h)}</th>" for h in b.headers)
                rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b.rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif b.kind == "figure":
                body.append(f"<figure>{self._inline_figure(b.stem)}<figcaption>{e(b.text)}</figcaption></figure>")
        style = (
            "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
            "line-height:1.45}table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;"
            "padding:.25rem .6rem;text-align:right}th{background:#f3f3f3}.verdict{font-weight:600;"
            "background:#f6f8e8;padding:.5rem;border-left:4px solid #8a3}figure{margin:1rem 0}"
            "figure svg,figure img{max-width:100%;height:auto}pre{background:#f6f6f6;padding:.5rem;"
            "overflow-x:auto}"
        )
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(self.title)}'
            f"</title><style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )

    def _inline_figure(self, stem: str) -> str:
        svg = self.root / f"{stem}.svg"
        if svg.exists():
            text = svg.read_text()
            start = text.find("<svg")
            return text[start:] if start >= 0 else text
        png = self.root / f"{stem}.png"
        if png.exists():
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            return f'<img alt="{html.escape(stem)}" src="data:image/png;base64,{data}">'
        return f"<p>(figure {html.escape(stem)} missing)</p>"

    def write(self) -> tuple[Path, Path]:
        """Write ``report.md`` and ``report.html`` under ``root``; return their paths."""
        self.root.mkdir(parents=True, exist_ok=True)
        md, page = self.root / "report.md", self.root / "report.html"
        md.write_text(self.markdown())
        page.write_text(self.html())
        return md, page


def _inline(text: str) -> str:
    """Escape, then render the few inline Markdown forms the reports use: `code`, **bold**."""
    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", t)
    return t
