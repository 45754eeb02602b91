"""A pytest plugin that makes nbval compare printed numbers the way a reader does.

nbval compares a lesson's stored outputs with a fresh run character for character. Floating-point
results differ in their last bits between CPUs, BLAS builds and thread counts, and a value near a
rounding boundary then prints differently (``35.0`` stored, ``34.9`` computed): text equality is
machine-dependent. This plugin keeps nbval's check and changes one thing, how numbers are
compared (the rule is written down in docs/AUTHORING.md):

- the two texts must be the same once every number is taken out (words, punctuation, layout;
  runs of spaces count as one space, since a table's columns widen when a value gains a digit);
- they must hold the same count of numbers;
- a number written without a decimal point or exponent (a count, a year, a row number) must be
  the same;
- a decimal number may differ by at most one unit of its last printed digit (for ``35.0`` that
  is 0.1, for ``0.655`` 0.001, for ``1.2e-05`` 1e-06); where the two are printed to different
  precision, the coarser one's unit counts.

A different score (``0.655`` against ``0.661``), a different row count or a different word still
fails. The plugin is registered through the ``pytest11`` entry point of this package, so every
``pytest --nbval`` run in the course's environment uses it; ``-p no:nbval_numbers`` turns it off.
"""

from __future__ import annotations

import copy
import math
import re

NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")
SPACES = re.compile(r"[ \t]+")
PLACEHOLDER = "\x00"
# Output fields nbval compares as text. Images and metadata are left to nbval.
TEXT_MIME = ("text/plain", "text/html", "text/markdown")


def _skeleton(text: str) -> str:
    return SPACES.sub(" ", NUMBER.sub(PLACEHOLDER, text))


def _is_decimal(token: str) -> bool:
    return "." in token or "e" in token.lower()


def _unit(token: str) -> float:
    """One unit of the last printed digit of a decimal number."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_agree(stored: str, computed: str) -> bool:
    """True if two printed numbers are equal under the rule above."""
    if stored == computed:
        return True
    if not (_is_decimal(stored) and _is_decimal(computed)):
        return False            # counts, years and ids must be exactly the same
    a, b = float(stored), float(computed)
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    tolerance = max(_unit(stored), _unit(computed))
    return abs(a - b) <= tolerance * (1 + 1e-9)


def texts_agree(stored: str, computed: str) -> bool:
    """True if two output texts differ at most in the last printed digit of their numbers."""
    if stored == computed:
        return True
    if _skeleton(stored) != _skeleton(computed):
        return False
    stored_numbers, computed_numbers = NUMBER.findall(stored), NUMBER.findall(computed)
    return len(stored_numbers) == len(computed_numbers) and all(
        numbers_agree(s, c) for s, c in zip(stored_numbers, computed_numbers))


def align_outputs(computed: list, stored: list) -> list:
    """A copy of the computed outputs where every text that agrees with its stored counterpart
    under the rule is replaced by the stored text, so nbval's exact comparison then passes for
    it and still reports every real difference. Outputs are paired by position and type."""
    aligned = copy.deepcopy(computed)
    if len(aligned) != len(stored):
        return aligned
    for new, old in zip(aligned, stored):
        if new.get("output_type") != old.get("output_type"):
            continue
        if new.get("output_type") == "stream":
            if new.get("name") == old.get("name") and isinstance(new.get("text"), str) \
                    and texts_agree(old.get("text", ""), new["text"]):
                new["text"] = old["text"]
            continue
        new_data, old_data = new.get("data") or {}, old.get("data") or {}
        for mime in TEXT_MIME:
            if isinstance(new_data.get(mime), str) and isinstance(old_data.get(mime), str) \
                    and texts_agree(old_data[mime], new_data[mime]):
                new_data[mime] = old_data[mime]
    return aligned


def _patch_nbval() -> bool:
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:          # nbval not installed: nothing to do
        return False
    if getattr(IPyNbCell.compare_outputs, "_mlcourse_numbers", False):
        return True
    exact = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        return exact(self, align_outputs(test, ref), ref, skip_compare)

    compare_outputs._mlcourse_numbers = True
    IPyNbCell.compare_outputs = compare_outputs
    return True


def pytest_configure(config):
    if config.pluginmanager.hasplugin("nbval"):
        _patch_nbval()
