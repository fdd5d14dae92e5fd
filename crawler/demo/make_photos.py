"""Draw the demo's listing photos once: instrument panels and serial plates, small real image files.

The sample sites serve these files (crawler/demo/data/photos/) so that `korgwatch demo` keeps photos offline.
Each unit gets its own picture (colours, knob positions, wear and framing seeded by its serial and a take
number), so two listings of different units share no photo. The repost's photos are what a marketplace makes
of an upload: an earlier listing's pictures resized and re-encoded, under new names.

Run once after changing the list (outputs are committed): python -m crawler.demo.make_photos
"""

from __future__ import annotations

import random
from io import BytesIO
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).parent / "data" / "photos"
SIZE = (320, 240)


class Shot(NamedTuple):
    """One demo photo: what it shows (`plate` or `panel`), of which unit, and how it is saved."""

    name: str
    kind: str
    model: str
    serial: str
    take: int


SHOTS: tuple[Shot, ...] = (
    Shot("ms20-144571-panel.jpg", "panel", "MS-20", "144571", 1),
    Shot("ms20-144571-plate.jpg", "plate", "MS-20", "144571", 1),
    Shot("ms20-144571-blog.jpg", "panel", "MS-20", "144571", 2),
    Shot("ms20-144571-jp.jpg", "panel", "MS-20", "144571", 3),
    Shot("polysix-386733.png", "panel", "Polysix", "386733", 1),
    Shot("polysix-386733-a.jpg", "panel", "Polysix", "386733", 2),
    Shot("polysix-386733-b.jpg", "plate", "Polysix", "386733", 1),
    Shot("ps3100-780152.webp", "panel", "PS-3100", "780152", 1),
    Shot("ms20-730144.gif", "panel", "MS-20", "730144", 1),
    Shot("ms20-141567-panel.jpg", "panel", "MS-20", "141567", 1),
    Shot("ms20-141567-plate.jpg", "plate", "MS-20", "141567", 1),
    Shot("monopoly-475329.jpg", "panel", "Mono/Poly", "475329", 1),
    Shot("poly61-730144.jpg", "panel", "Poly-61", "730144", 1),
    Shot("monopoly-375329-uk.jpg", "panel", "Mono/Poly", "375329", 1),
    Shot("ms20-145502.jpg", "panel", "MS-20", "145502", 1),
    Shot("ms20-148802.jpg", "panel", "MS-20", "148802", 1),
    Shot("monopoly-375329.jpg", "panel", "Mono/Poly", "375329", 2),
)
#: The repost: (new name, the earlier photo it re-uploads, scale, JPEG quality).
REUPLOADS: tuple[tuple[str, str, float, int], ...] = (
    ("ms20-141567-reup-1.jpg", "ms20-141567-panel.jpg", 0.8, 55),
    ("ms20-141567-reup-2.jpg", "ms20-141567-plate.jpg", 0.75, 50),
)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def draw_panel(model: str, serial: str, take: int) -> Image.Image:
    """A synth seen from above: a coloured panel with rows of knobs, a keyboard, wear marks; seeded per unit."""
    rng = random.Random(f"{model}/{serial}/{take}")
    image = Image.new("RGB", SIZE, tuple(rng.randrange(150, 230) for _ in range(3)))  # the table it stands on
    draw = ImageDraw.Draw(image)
    left, top = rng.randrange(10, 40), rng.randrange(10, 40)
    right, bottom = SIZE[0] - rng.randrange(10, 40), SIZE[1] - rng.randrange(10, 40)
    panel = (rng.randrange(20, 70), rng.randrange(20, 70), rng.randrange(20, 90))
    draw.rectangle((left, top, right, bottom), fill=panel, outline=(10, 10, 10), width=3)
    keys_top = top + (bottom - top) * 6 // 10
    draw.text((left + 8, top + 6), f"KORG {model}", fill=(235, 235, 235), font=_font(16))
    for row in range(rng.randrange(2, 4)):
        y = top + 34 + row * 30
        for column in range(rng.randrange(6, 11)):
            x = left + 20 + column * (right - left - 40) // 10
            radius = rng.randrange(5, 10)
            colour = rng.choice(((230, 230, 230), (200, 40, 30), (20, 20, 20), (240, 200, 40)))
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour, outline=(0, 0, 0))
            angle_x = x + rng.randrange(-radius, radius)
            draw.line((x, y, angle_x, y - radius), fill=(0, 0, 0), width=2)
    white = (right - left - 20) / 21
    for key in range(21):
        key_x = left + 10 + key * white
        draw.rectangle((key_x, keys_top, key_x + white - 2, bottom - 8), fill=(245, 245, 240), outline=(90, 90, 90))
    for key in range(20):
        if key % 7 in (2, 6):
            continue
        black_x = left + 10 + (key + 0.65) * white
        draw.rectangle(
            (black_x, keys_top, black_x + white * 0.6, keys_top + (bottom - keys_top) * 0.6), fill=(15, 15, 15)
        )
    for _ in range(rng.randrange(3, 9)):  # scratches: what tells one unit from another
        x, y = rng.randrange(left, right), rng.randrange(top, keys_top)
        draw.line((x, y, x + rng.randrange(-40, 40), y + rng.randrange(-12, 12)), fill=(180, 180, 180), width=1)
    return image.rotate(rng.uniform(-4, 4), resample=Image.Resampling.BICUBIC, fillcolor=(120, 110, 100))


def draw_plate(model: str, serial: str, take: int) -> Image.Image:
    """The number plate on the rear panel, close up: the picture that settles a wrong serial in a title."""
    rng = random.Random(f"plate/{model}/{serial}/{take}")
    image = Image.new("RGB", SIZE, (35, 35, 38))
    draw = ImageDraw.Draw(image)
    x0, y0 = rng.randrange(30, 60), rng.randrange(40, 70)
    x1, y1 = SIZE[0] - rng.randrange(30, 60), SIZE[1] - rng.randrange(40, 70)
    draw.rectangle((x0, y0, x1, y1), fill=(196, 192, 180), outline=(90, 90, 90), width=2)
    for sx, sy in ((x0 + 10, y0 + 10), (x1 - 10, y0 + 10), (x0 + 10, y1 - 10), (x1 - 10, y1 - 10)):
        draw.ellipse((sx - 5, sy - 5, sx + 5, sy + 5), fill=(120, 120, 120), outline=(60, 60, 60))
        draw.line((sx - 4, sy + rng.randrange(-3, 4), sx + 4, sy), fill=(50, 50, 50), width=2)  # the slot
    ink = (25, 25, 25)
    draw.text((x0 + 24, y0 + 18), "KORG INC.", fill=ink, font=_font(18))
    draw.text((x0 + 24, y0 + 56), f"MODEL  {model}", fill=ink, font=_font(20))
    draw.text((x0 + 24, y0 + 92), f"No.  {serial}", fill=ink, font=_font(18))
    draw.text((x0 + 24, y1 - 34), "MADE IN JAPAN   AC 117V 50/60Hz", fill=ink, font=_font(13))
    for _ in range(rng.randrange(2, 6)):
        x, y = rng.randrange(x0, x1), rng.randrange(y0, y1)
        draw.line((x, y, x + rng.randrange(-30, 30), y + rng.randrange(-8, 8)), fill=(150, 140, 120), width=1)
    return image


def encode(image: Image.Image, name: str) -> bytes:
    """The picture in the format its name says, small: a few kilobytes each."""
    out = BytesIO()
    suffix = name.rsplit(".", 1)[-1]
    if suffix == "png":
        image.quantize(16).save(out, "PNG", optimize=True)
    elif suffix == "webp":
        image.save(out, "WEBP", quality=50)
    elif suffix == "gif":
        second = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)  # two frames: only the first is kept
        first = image.quantize(16)
        first.save(out, "GIF", save_all=True, append_images=[second.quantize(16)], duration=500, loop=0)
    else:
        image.save(out, "JPEG", quality=45, optimize=True)
    return out.getvalue()


def reupload(original: bytes, scale: float, quality: int) -> bytes:
    """What a marketplace makes of an upload: resized, re-encoded, metadata gone."""
    with Image.open(BytesIO(original)) as image:
        smaller = image.convert("RGB").resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
        )
    out = BytesIO()
    smaller.save(out, "JPEG", quality=quality)
    return out.getvalue()


def make_photos(out: Path = OUT) -> list[Path]:
    """Write every demo photo into `out`; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, bytes] = {}
    for shot in SHOTS:
        draw = draw_plate if shot.kind == "plate" else draw_panel
        written[shot.name] = encode(draw(shot.model, shot.serial, shot.take), shot.name)
    for name, source, scale, quality in REUPLOADS:
        written[name] = reupload(written[source], scale, quality)
    paths = []
    for name, data in written.items():
        path = out / name
        path.write_bytes(data)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written_path in make_photos():
        print(f"{written_path.stat().st_size:6d}  {written_path.name}")
