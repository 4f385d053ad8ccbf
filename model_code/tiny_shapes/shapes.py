"""Synthetic colour x shape images and captions: the whole world the tiny-shapes CLIP knows.

Every sample is a function of one seeded ``random.Random``, so a seed names a data set: the trainer
draws from one seed and the evaluation from another, which makes "held out" mean freshly generated.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 165, 55),
    "blue": (40, 75, 220),
    "yellow": (240, 215, 35),
    "orange": (245, 135, 25),
    "purple": (135, 55, 185),
    "pink": (245, 125, 195),
    "cyan": (35, 200, 215),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
SIZES: tuple[str, ...] = ("small", "large")
CLASSES: tuple[tuple[str, str], ...] = tuple((c, s) for c in COLOURS for s in SHAPES)

# Captions the trainer samples from; "{size}" templates name the size the image really has.
CAPTION_TEMPLATES: tuple[str, ...] = (
    "{a} {colour} {shape}",
    "a photo of {a} {colour} {shape}",
    "a picture of {a} {colour} {shape}",
    "a drawing of {a} {colour} {shape}",
    "an image of {a} {colour} {shape}",
    "{a} {colour} {shape} on a plain background",
    "{colour} {shape}",
    "{a} {size} {colour} {shape}",
    "a photo of {a} {size} {colour} {shape}",
    "a {size} {colour} {shape} in the picture",
)
# Prompts averaged per class for zero-shot classification (no size word: every size is the class).
ZERO_SHOT_TEMPLATES: tuple[str, ...] = (
    "{a} {colour} {shape}",
    "a photo of {a} {colour} {shape}",
    "a picture of {a} {colour} {shape}",
)

_IMAGE_SIZE = 64
_SUPERSAMPLE = 2
_SIZE_RANGES = {"small": (0.13, 0.21), "large": (0.28, 0.42)}  # radius as a fraction of the image side


@dataclass(frozen=True)
class Sample:
    """One generated image with its ground truth."""

    image: Image.Image
    colour: str
    shape: str
    size: str

    @property
    def label(self) -> int:
        return CLASSES.index((self.colour, self.shape))


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption(colour: str, shape: str, size: str | None, template: str) -> str:
    """Fill a template; ``size`` None leaves size words out (the template must not use them)."""
    first = size if size and template.startswith("{a} {size}") else colour
    return template.format(a=article(first), colour=colour, shape=shape, size=size or "")


def zero_shot_prompts(colour: str, shape: str) -> list[str]:
    return [caption(colour, shape, None, t) for t in ZERO_SHOT_TEMPLATES]


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        corners, radii = 4, [r * 0.9 * math.sqrt(2)] * 4
    elif shape == "triangle":
        corners, radii = 3, [r * 1.15] * 3
    else:  # star: five points, alternating outer and inner radius
        corners, radii = 10, [r * 1.1 if i % 2 == 0 else r * 0.45 for i in range(10)]
    offset = angle + (math.pi / 4 if shape == "square" else -math.pi / 2)
    return [
        (
            cx + radii[i] * math.cos(offset + 2 * math.pi * i / corners),
            cy + radii[i] * math.sin(offset + 2 * math.pi * i / corners),
        )
        for i in range(corners)
    ]


def _jitter(rgb: tuple[int, int, int], rng: random.Random, amount: int) -> tuple[int, int, int]:
    return tuple(max(0, min(255, v + rng.randint(-amount, amount))) for v in rgb)  # type: ignore[return-value]


def _distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return math.dist(a, b)


def _background(rng: random.Random, fill: tuple[int, int, int]) -> tuple[int, int, int]:
    """Half plain greys (white to black), half random colours; never close to the shape's colour."""
    while True:
        if rng.random() < 0.5:
            grey = rng.choice((255, 255, 240, 200, 128, 60, 0, rng.randint(0, 255)))
            bg = (grey, grey, grey)
        else:
            bg = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
        if _distance(bg, fill) > 150:
            return bg


def render(colour: str, shape: str, size: str, rng: random.Random, image_size: int = _IMAGE_SIZE) -> Image.Image:
    """Draw one shape at a random place, size within its class, rotation and background."""
    side = image_size * _SUPERSAMPLE
    fill = _jitter(COLOURS[colour], rng, 18)
    lo, hi = _SIZE_RANGES[size]
    r = rng.uniform(lo, hi) * side
    margin = r * 1.1
    cx, cy = rng.uniform(margin, side - margin), rng.uniform(margin, side - margin)
    img = Image.new("RGB", (side, side), _background(rng, fill))
    draw = ImageDraw.Draw(img)
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon(_polygon(shape, cx, cy, r, rng.uniform(-0.4, 0.4)), fill=fill)
    img = img.resize((image_size, image_size), Image.Resampling.BOX)
    if rng.random() < 0.2:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    return img


def sample(rng: random.Random, colour: str | None = None, shape: str | None = None) -> Sample:
    colour = colour or rng.choice(tuple(COLOURS))
    shape = shape or rng.choice(SHAPES)
    size = rng.choice(SIZES)
    return Sample(render(colour, shape, size, rng), colour, shape, size)


def random_caption(s: Sample, rng: random.Random) -> tuple[str, str | None]:
    """A caption for ``s`` and the size it names (None when it names none)."""
    template = rng.choice(CAPTION_TEMPLATES)
    size = s.size if "{size}" in template else None
    return caption(s.colour, s.shape, size, template), size


def balanced_set(seed: int, per_class: int) -> list[Sample]:
    """``per_class`` images of every colour x shape class, in a seed-determined order."""
    rng = random.Random(seed)
    samples = [sample(rng, c, s) for c, s in CLASSES for _ in range(per_class)]
    rng.shuffle(samples)
    return samples
