"""The packing proof as a PNG: one image an agent can paste into a chat with the buyer.

Rendered with Pillow (imported when first needed: the daemon runs without it, and this
module then raises ``RendererMissingError``). Chinese text needs a CJK font: the first of
``CJK_FONTS`` that exists is used (Debian ``fonts-wqy-microhei``); without one, Pillow's
default font draws Latin text only, the Chinese characters come out as boxes, and a warning
says which package to install (``lang="en"`` is then the readable choice).

Layout, top to bottom, 1080 px wide: title and order facts, one row per component (its
status in words, each scan's time and second in the clip, the clip link), the snapshot at
close scaled to fit, and the audit stamp in the footer.
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from gateway._errors import GatewayError
from gateway._ops_lookup.proof import PackingProof, proof_texts, when

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

log = logging.getLogger(__name__)

#: CJK fonts looked for, in order (Debian/Ubuntu package in the comment).
CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),  # fonts-noto-cjk
)
WIDTH = 1080
MARGIN = 40
#: The tallest the snapshot is drawn.
SNAPSHOT_MAX_HEIGHT = 480
#: A smaller snapshot is enlarged to about this width.
SNAPSHOT_MIN_WIDTH = 320

Font: TypeAlias = "ImageFont.FreeTypeFont | ImageFont.ImageFont"


class RendererMissingError(GatewayError):
    """Pillow is not installed: the PNG proof cannot be drawn (the HTML proof can)."""


def proof_png(proof: PackingProof, *, lang: str = "zh", snapshot: bytes | None = None) -> bytes:
    """The proof as PNG bytes.

    Args:
        lang: ``zh`` (default) or ``en``.
        snapshot: the JPEG at close (``proof.load_snapshot``), drawn when given and readable.

    Raises:
        RendererMissingError: Pillow is not installed.
    """
    try:
        from PIL import Image, ImageDraw, UnidentifiedImageError
    except ImportError as exc:
        raise RendererMissingError("the PNG proof needs Pillow: pip install pillow (or use proof.html)") from exc
    t = proof_texts(lang)
    en = lang == "en"
    regular, small, title = _font(22), _font(17), _font(34)
    lines: list[tuple[str, Font, str]] = [(t["title"], title, "#111111")]
    order, session = proof.order, proof.session
    lines.append((f"{t['order']}: {order.order_id}    {t['status']}: {order.status_en if en else order.status_zh}",
                  regular, "#111111"))
    lines.append((f"{t['waybill']}: {', '.join(order.waybills) or t['none']}", regular, "#111111"))
    if session is not None:
        lines.append((f"{t['station']}: {session.station}    {t['operator']}: {session.operator}    "
                      f"{t['opened']}: {when(session.opened_at_ms)}    {t['closed']}: {when(session.closed_at_ms)}",
                      regular, "#111111"))
    else:
        lines.append((t["no_session"], regular, "#aa0000"))
    lines.append(("", small, "#111111"))
    for component in order.components:
        lines.append(("• " + (component.text_en if en else component.text_zh) + f"  [{component.sku}]", regular,
                      "#b35900" if component.state in ("missing", "stopped", "held") else "#111111"))
        for scan in component.scans:
            offset = f"{scan.offset_s:.1f}s" if scan.offset_s is not None else t["pending"]
            lines.append((f"    {t['scanned']}: {when(scan.scanned_at_ms)}   {t['offset']}: {offset}", small,
                          "#333333"))
            if scan.clip_at_uri:
                lines.append((f"    {t['clip']}: {scan.clip_at_uri}", small, "#1a4f9c"))
    picture = None
    if snapshot:
        try:
            picture = Image.open(io.BytesIO(snapshot)).convert("RGB")
            picture.thumbnail((WIDTH - 2 * MARGIN, SNAPSHOT_MAX_HEIGHT))
            if picture.width < SNAPSHOT_MIN_WIDTH:  # a thumbnail-sized snapshot: enlarged, pixels kept sharp
                factor = max(1, min(SNAPSHOT_MIN_WIDTH // picture.width, SNAPSHOT_MAX_HEIGHT // picture.height))
                picture = picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.NEAREST)
        except (UnidentifiedImageError, OSError) as exc:
            log.warning("snapshot cannot be decoded, proof drawn without it: %s", exc)
            picture = None
    stamp = proof.stamp
    footer = [(f"{t['stamp']}: #{stamp.seq} {stamp.hash}" if stamp else f"{t['stamp']}: {t['none']}", small, "#111111"),
              (f"{t['generated']}: {when(proof.generated_at_ms)} (UTC+8)", small, "#555555")]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped = [(piece, font, colour) for text, font, colour in [*lines] for piece in _wrap(probe, text, font)]
    wrapped_footer = [(piece, font, colour) for text, font, colour in footer for piece in _wrap(probe, text, font)]
    heights = [_line_height(font) for _, font, _ in [*wrapped, *wrapped_footer]]
    snapshot_height = (picture.height + 50) if picture is not None else 40
    height = MARGIN * 2 + sum(heights) + snapshot_height + 20
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    y = MARGIN
    for text, font, colour in wrapped:
        draw.text((MARGIN, y), text, font=font, fill=colour)
        y += _line_height(font)
    draw.text((MARGIN, y), t["snapshot"] + ("" if picture is not None else f": {t['no_snapshot']}"), font=regular,
              fill="#111111")
    y += 34
    if picture is not None:
        image.paste(picture, (MARGIN, y))
        y += picture.height + 16
    draw.line((MARGIN, y, WIDTH - MARGIN, y), fill="#999999", width=1)
    y += 10
    for text, font, colour in wrapped_footer:
        draw.text((MARGIN, y), text, font=font, fill=colour)
        y += _line_height(font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font) -> list[str]:
    """``text`` cut into lines that fit the page (by character: Chinese has no spaces)."""
    limit = WIDTH - 2 * MARGIN
    if not text:
        return [""]
    out: list[str] = []
    current = ""
    for char in text:
        if current and draw.textlength(current + char, font=font) > limit:
            out.append(current)
            current = "    " if text.startswith("    ") else ""
        current += char
    out.append(current)
    return out


def _line_height(font: Font) -> int:
    size = getattr(font, "size", 16)
    return int(size * 1.45) + 2


@lru_cache(maxsize=8)
def _font(size: int) -> Font:
    """The CJK font at ``size`` px, else Pillow's default font (warned once per size)."""
    from PIL import ImageFont

    for path in CJK_FONTS:
        if path.exists():
            try:
                return ImageFont.truetype(str(path), size)
            except OSError as exc:
                log.warning("font %s cannot be loaded: %s", path, exc)
    log.warning("no CJK font found (%s): the PNG proof's Chinese text will not render; "
                "install fonts-wqy-microhei or use lang=en", ", ".join(str(p) for p in CJK_FONTS))
    return ImageFont.load_default(size)


__all__ = ["CJK_FONTS", "RendererMissingError", "proof_png"]
