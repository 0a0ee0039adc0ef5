"""Small media files for the demo, drawn at seed time (nothing binary is committed): a product
photo, a damaged-parcel photo, a PDF invoice and a short voice note."""

import io
import math
import struct
import wave

from PIL import Image, ImageDraw


def photo(label: str, colour: tuple[int, int, int], size=(480, 360)) -> bytes:
    """A flat "photo": a coloured object on a light table with a caption."""
    image = Image.new("RGB", size, (236, 232, 224))
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle((0, int(h * 0.62), w, h), fill=(206, 198, 186))
    draw.rounded_rectangle(
        (int(w * 0.28), int(h * 0.22), int(w * 0.72), int(h * 0.78)), radius=18, fill=colour
    )
    draw.ellipse((int(w * 0.40), int(h * 0.34), int(w * 0.60), int(h * 0.52)), fill=(250, 250, 250))
    draw.text((16, h - 28), label, fill=(60, 60, 60))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82)
    return out.getvalue()


def invoice_pdf(number: str, lines: list[tuple[str, str]]) -> bytes:
    """A one-page invoice as a PDF (Pillow writes PDF), so the worker renders its preview."""
    image = Image.new("RGB", (620, 877), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 620, 90), fill=(32, 84, 147))
    draw.text((40, 35), f"Switchboard Demo Shop — Invoice {number}", fill="white")
    y = 140
    for item, amount in lines:
        draw.text((40, y), item, fill=(30, 30, 30))
        draw.text((480, y), amount, fill=(30, 30, 30))
        draw.line((40, y + 22, 580, y + 22), fill=(220, 220, 220))
        y += 40
    out = io.BytesIO()
    image.save(out, "PDF", resolution=72)
    return out.getvalue()


def voice_note(seconds: float = 2.5, rate: int = 8000) -> bytes:
    """A short WAV with a rising-and-falling tone: plays in the browser's audio element."""
    frames = bytearray()
    count = int(seconds * rate)
    for i in range(count):
        envelope = math.sin(math.pi * i / count)
        tone = 220 + 80 * math.sin(2 * math.pi * i / (rate * 0.8))
        frames += struct.pack("<h", int(9000 * envelope * math.sin(2 * math.pi * tone * i / rate)))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return out.getvalue()
