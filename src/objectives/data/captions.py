"""Handwritten digits with a caption each: scikit-learn's bundled 8×8 digits (as `data=digits`
loads them) paired with a sentence naming the digit ("seven", "a handwritten 7", "the digit
seven", ...). Nothing is downloaded.

A template holds `{name}` (the digit's word) or `{digit}` (its numeral); each image's template
is drawn from a generator seeded by `seed`, so the pairs are the same in every run and on
every process. `prompt` is the one caption a class that zero-shot classification embeds
(the nearest prompt names the image's digit).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from objectives import checks
from objectives.data.images import digits
from objectives.errors import ConfigError

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
PLACEHOLDERS = ("name", "digit")
TEMPLATES = ("{name}", "{digit}", "a handwritten {digit}", "the digit {name}",
             "a picture of a {name}", "the number {digit}", "a {name}")  # fmt: skip
PROMPT = "a handwritten {digit}"


@dataclass(frozen=True)
class Captioned:
    """What a caption source returns: images (N, C, H, W), labels (N,), one caption an image,
    and one prompt a class (in label order)."""

    images: Tensor
    labels: Tensor
    captions: tuple[str, ...]
    prompts: tuple[str, ...]


def _checked_template(template: object, key: str) -> str:
    """A template with at least one placeholder and none other than {name} and {digit}."""
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(
            f"{key}={checks.show(template)} must be a caption with a placeholder, "
            "e.g. 'the digit {name}'"
        )
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as err:  # an unmatched brace
        raise ConfigError(
            f"{key}={template!r} is not a template ({err}); write braces only around a "
            "placeholder, e.g. 'the digit {name}'"
        ) from None
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        raise ConfigError(
            f"{key}={template!r} has the placeholder {{{unknown[0]}}}; use {{name}} (seven) "
            "or {digit} (7)"
        )
    if not fields:
        raise ConfigError(
            f"{key}={template!r} names no digit, so its caption could match any image; put "
            "{name} (seven) or {digit} (7) in it"
        )
    return template


def fill(template: str, digit: int) -> str:
    return template.format(name=NAMES[digit], digit=digit)


def captioned_digits(
    templates: Sequence[str] = TEMPLATES,
    prompt: str = PROMPT,
    classes: Sequence[int] | None = None,
    seed: int = 0,
) -> Captioned:
    """The digits (of `classes`, relabelled 0..k−1 as `data=digits` does), each with a caption
    from one of `templates`, drawn per image with a generator seeded by `seed`."""
    key = "data.source.templates"
    if isinstance(templates, str) or not isinstance(templates, Sequence):
        raise ConfigError(
            f"{key} must be a list of captions, got {checks.show(templates)}; "
            "e.g. data.source.templates=['{name}','a handwritten {digit}']"
        )
    if not templates:
        raise ConfigError(
            f"{key} is empty: every image needs a caption; "
            "e.g. data.source.templates=['{name}','a handwritten {digit}']"
        )
    templates = [_checked_template(t, f"{key}[{i}]") for i, t in enumerate(templates)]
    prompt = _checked_template(prompt, "data.source.prompt")
    seed = checks.integer(seed, "data.source.seed", example=0)
    images, labels = digits(classes)
    chosen = list(range(10)) if classes is None else [int(c) for c in classes]
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(templates), (len(labels),), generator=generator).tolist()
    captions = tuple(
        fill(templates[pick], chosen[label])
        for pick, label in zip(picks, labels.tolist(), strict=True)
    )
    prompts = tuple(fill(prompt, digit) for digit in chosen)
    return Captioned(images, labels, captions, prompts)
