"""Draw the example workspace's library images (the project's own, no third-party artwork).

    .venv/bin/python examples/images/make_images.py

Writes the eight files `examples/workspace.yaml` names under `file:` (the folders mirror their public
URLs), at the sizes it states: flat
shapes and a label in Pillow's built-in font, saved small (JPEG quality 70, optimised PNG) so the
repository stays light. Re-running gives the same pictures; the bytes may differ between Pillow
versions, which only changes their hashes.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).parent
SAGE, CREAM, BRASS, INK, LEAF = (122, 146, 116), (246, 241, 229), (181, 140, 61), (33, 44, 38), (76, 110, 70)


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, size: int, fill: tuple[int, int, int]) -> None:
    draw.text(xy, text, font=font(size), fill=fill)


def logo() -> Image.Image:
    picture = Image.new("RGBA", (336, 80), (0, 0, 0, 0))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((8, 12, 64, 68), fill=SAGE)
    draw.polygon([(36, 18), (52, 52), (20, 52)], fill=CREAM)  # a leaf-ish compass point
    label(draw, (78, 16), "NORTHWIND", 30, INK)
    label(draw, (80, 50), "Trading Co. - Spring", 16, LEAF)
    return picture


def hero(title: str, subtitle: str, band: tuple[int, int, int]) -> Image.Image:
    picture = Image.new("RGB", (1200, 640), CREAM)
    draw = ImageDraw.Draw(picture)
    for i in range(8):  # rolling hills
        draw.ellipse((-200 + i * 180, 380 - (i % 3) * 40, 300 + i * 180, 900), fill=(SAGE[0] - i * 6, SAGE[1] - i * 4,
                                                                                     SAGE[2] - i * 5))
    draw.ellipse((930, 70, 1090, 230), fill=(236, 200, 110))  # the sun
    draw.rectangle((0, 0, 1200, 28), fill=band)
    label(draw, (80, 120), title, 84, INK)
    label(draw, (84, 230), subtitle, 40, LEAF)
    return picture


def category(name: str, colour: tuple[int, int, int]) -> Image.Image:
    picture = Image.new("RGB", (512, 384), colour)
    draw = ImageDraw.Draw(picture)
    draw.rounded_rectangle((40, 40, 472, 344), radius=28, outline=CREAM, width=6)
    label(draw, (80, 160), name, 56, CREAM)
    return picture


def product(name: str, body: tuple[int, int, int], shape: str) -> Image.Image:
    picture = Image.new("RGB", (600, 600), (250, 248, 243))
    draw = ImageDraw.Draw(picture)
    if shape == "can":
        draw.rounded_rectangle((170, 220, 400, 470), radius=30, fill=body)
        draw.polygon([(390, 260), (540, 180), (550, 200), (400, 300)], fill=body)  # spout
        draw.arc((200, 140, 370, 300), 180, 360, fill=body, width=18)  # handle
    else:
        draw.polygon([(220, 120), (380, 120), (460, 500), (140, 500)], fill=body)  # apron
        draw.line((220, 120, 170, 60), fill=body, width=10)
        draw.line((380, 120, 430, 60), fill=body, width=10)
        draw.rectangle((250, 300, 350, 380), outline=CREAM, width=6)  # pocket
    label(draw, (40, 530), name, 30, INK)
    return picture


def main() -> None:
    jpeg = {"quality": 70, "optimize": True, "progressive": True}
    (HERE / "brand").mkdir(exist_ok=True)
    logo().save(HERE / "brand" / "northwind-logo-spring@2x.png", optimize=True)
    heroes = {
        "spring-2026-hero-gold.jpg": ("Gold early access", "Spring Sale starts today for you", BRASS),
        "spring-2026-hero-silver.jpg": ("Silver: extra 10%", "Spring Sale, on top of every offer", (170, 170, 178)),
        "spring-2026-hero.jpg": ("Spring Sale", "Up to 30% off garden and kitchen", SAGE),
    }
    (HERE / "campaigns" / "spring-2026").mkdir(parents=True, exist_ok=True)
    for filename, (title, subtitle, band) in heroes.items():
        hero(title, subtitle, band).save(HERE / "campaigns" / "spring-2026" / filename, **jpeg)
    (HERE / "categories").mkdir(exist_ok=True)
    category("Garden", LEAF).save(HERE / "categories" / "category-garden.jpg", **jpeg)
    category("Kitchen", (150, 96, 70)).save(HERE / "categories" / "category-kitchen.jpg", **jpeg)
    (HERE / "products").mkdir(exist_ok=True)
    product("Brass watering can, 1.5 l", BRASS, "can").save(HERE / "products" / "brass-watering-can-1-5l.jpg", **jpeg)
    product("Linen apron, sage", SAGE, "apron").save(HERE / "products" / "linen-apron-stonewashed-sage.jpg", **jpeg)


if __name__ == "__main__":
    main()
