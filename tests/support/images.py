"""Small real images for tests (made with Pillow, so every byte is ours)."""

from __future__ import annotations

import io


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (48, 32), colour: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, (255, 255, 255))
    ImageDraw.Draw(img).ellipse((size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4), fill=colour)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
