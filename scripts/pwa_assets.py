"""Makes the installable inbox's icons and the new-message sound under static/pwa/.

Everything is drawn and synthesised here (no third-party artwork or recordings), so the files
are ours to ship. Deterministic: running it again gives the same bytes.

    .venv/bin/python scripts/pwa_assets.py
"""

import math
import struct
import wave
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "static" / "pwa"
DARK = (21, 27, 38, 255)
ACCENT = (47, 111, 237, 255)
WHITE = (255, 255, 255, 255)


def diamond(draw, cx, cy, r, fill):
    draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)


def icon(size: int, *, maskable: bool) -> Image.Image:
    scale = 4  # drawn large, scaled down: smooth edges
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable:
        draw.rectangle([0, 0, big, big], fill=DARK)  # full bleed; the platform cuts the shape
        radius = big * 0.26  # inside the 80 % safe zone
    else:
        draw.rounded_rectangle([0, 0, big - 1, big - 1], radius=big * 0.22, fill=DARK)
        radius = big * 0.32
    diamond(draw, big / 2, big / 2, radius, ACCENT)
    diamond(draw, big / 2, big / 2, radius * 0.42, WHITE)
    return image.resize((size, size), Image.LANCZOS)


def badge(size: int) -> Image.Image:
    """Android's status-bar badge: a white shape on transparency."""
    scale = 4
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    diamond(ImageDraw.Draw(image), big / 2, big / 2, big * 0.42, WHITE)
    return image.resize((size, size), Image.LANCZOS)


def chime(path: Path, rate: int = 22050) -> None:
    """Two soft bell partials (E6 then A6), each with a quick attack and exponential decay."""
    notes = [(0.0, 1318.5), (0.12, 1760.0)]
    length = int(rate * 0.6)
    samples = []
    for n in range(length):
        t = n / rate
        value = 0.0
        for start, freq in notes:
            if t >= start:
                u = t - start
                envelope = min(1.0, u / 0.004) * math.exp(-u * 9)
                value += envelope * (
                    math.sin(2 * math.pi * freq * u)
                    + 0.25 * math.sin(2 * math.pi * freq * 2.01 * u)
                )
        samples.append(int(max(-1.0, min(1.0, value * 0.3)) * 32767))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))


def main() -> None:
    (OUT / "icons").mkdir(parents=True, exist_ok=True)
    (OUT / "sounds").mkdir(parents=True, exist_ok=True)
    icon(192, maskable=False).save(OUT / "icons" / "icon-192.png", optimize=True)
    icon(512, maskable=False).save(OUT / "icons" / "icon-512.png", optimize=True)
    icon(512, maskable=True).save(OUT / "icons" / "maskable-512.png", optimize=True)
    icon(180, maskable=True).convert("RGB").save(OUT / "icons" / "apple-touch-icon.png")
    badge(72).save(OUT / "icons" / "badge-72.png", optimize=True)
    chime(OUT / "sounds" / "new-message.wav")


if __name__ == "__main__":
    main()
