"""The PNG proof on its own: the CJK font when present, the default font with a warning when
not, a snapshot drawn, a damaged one skipped (real Pillow, no store)."""

from __future__ import annotations

import io
import logging

from PIL import Image

from gateway._ops_lookup import proof_image
from gateway._ops_lookup.proof import AuditStamp, PackingProof, proof_html
from gateway._ops_lookup.values import ComponentView, OrderView, ScanProof, SessionRef

SCAN = ScanProof("A1-1", "A1", "OP-1", 1_796_400_002_000, "111", 7.0, "rtsp://nvr/x?starttime=1", 7.0,
                 "rtsp://nvr/x?starttime=20261204T100007Z&endtime=20261204T100100Z", True)
BOX = ComponentView("douyin|1#2", "douyin|1", "GB-1", "礼盒 <Gift> box", "gift_box", "gift_box", 1, 1, 1, "shipped",
                    "SF1", 0, "礼盒 <Gift> box 已随 SF1 发出", "礼盒 <Gift> box shipped with SF1", True, (SCAN,))
ORDER = OrderView("douyin|1", "douyin", "1", "SHIPPED", "已发货", "shipped", 1, 2, None, {"amount": 9.9}, ("SF1",),
                  "", (BOX,), ())
SESSION = SessionRef("A1-1", "A1", "OP-1", 1_796_400_000_000, 1_796_400_009_000, "closed", "CLOSED")
PROOF = PackingProof("t1", ORDER, SESSION, AuditStamp(12, "ab" * 32, 1, "evidence"), 1_796_400_100_000)


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "navy").save(out, format="JPEG")
    return out.getvalue()


def test_the_png_draws_the_snapshot_scaled_to_the_page():
    plain = Image.open(io.BytesIO(proof_image.proof_png(PROOF)))
    with_snapshot = Image.open(io.BytesIO(proof_image.proof_png(PROOF, snapshot=jpeg(1920, 1080))))
    assert plain.format == with_snapshot.format == "PNG" and plain.width == with_snapshot.width == 1080
    assert with_snapshot.height - plain.height >= 400  # the snapshot, at most 480 px tall
    navy = with_snapshot.convert("RGB").getpixel((300, with_snapshot.height - 300))
    assert navy != (255, 255, 255)
    tiny = Image.open(io.BytesIO(proof_image.proof_png(PROOF, snapshot=jpeg(2, 2))))
    assert tiny.height - plain.height >= 240  # enlarged to be seen


def test_a_damaged_snapshot_is_left_out(caplog):
    with caplog.at_level(logging.WARNING):
        image = Image.open(io.BytesIO(proof_image.proof_png(PROOF, snapshot=b"\xff\xd8 not a jpeg")))
    assert image.format == "PNG" and "cannot be decoded" in caplog.text


def test_without_a_cjk_font_the_default_font_draws_and_a_warning_names_the_package(monkeypatch, caplog):
    monkeypatch.setattr(proof_image, "CJK_FONTS", ())
    proof_image._font.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            png = proof_image.proof_png(PROOF, lang="en")
        assert Image.open(io.BytesIO(png)).format == "PNG"
        assert "fonts-wqy-microhei" in caplog.text
    finally:
        proof_image._font.cache_clear()


def test_the_page_escapes_what_it_shows_and_switches_language():
    page = proof_html(PROOF)
    assert "礼盒 &lt;Gift&gt; box 已随 SF1 发出" in page and "<Gift>" not in page
    assert 'href="?lang=en"' in page and "#12 " + "ab" * 32 in page and "无快照" in page
    english = proof_html(PROOF, lang="en")
    assert 'lang="en"' in english and "Snapshot at close" in english and 'href="?lang=zh"' in english
