"""Plain numerals of any length (one job: digits in, canonical digits or an exact integer out, in linear time or
near it, and never through Python's int-to-string limit).

``plain_numeral`` recognizes an answer that is only a number (``-12345``, ``1,234,567``, ``3.1400``, ``1\\,000``,
``{,}`` separators, a trailing period; any script's decimal digits; a Unicode minus) and returns its canonical text (no leading zeros, no trailing decimal zeros,
no ``+``, ``-0`` is ``0``), so two such answers compare as strings, whatever their length. ``to_int`` and
``int_text`` convert between digit strings and ints by halves, so thousands of digits neither hit
``sys.get_int_max_str_digits`` nor take quadratic time in one step.
"""
from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from functools import lru_cache

_CHUNK = 4000  # digits converted in one step (CPython's default limit is 4300)
_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_SEPARATORS = re.compile(r"\{,\}|\\[,!: ]|\\thinspace\b|[\u2009\u202f\u00a0]")
_PLAIN = re.compile(r"([-+]?)(\d+)(?:\.(\d+))?")
_MINUS_SIGNS = "−–"  # Unicode's minus sign and the en dash, written for one
_GROUPED = re.compile(r"([-+]?)(\d{1,3}(?:,\d{3})+)(?:\.(\d+))?")
_SPACED = re.compile(r"([-+]?)(\d{1,3}(?: \d{3})+)(?:\.(\d+))?")


def ascii_digits(text: str) -> str:
    """Unicode decimal digits (fullwidth ``１２``, Arabic-Indic ``١٢``) as ASCII digits."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text)


@lru_cache(maxsize=4096)
def plain_numeral(text: str) -> str | None:
    """The canonical text of an answer that is just a number, else None."""
    if len(text) < 1 or not any(ch.isdigit() for ch in text[:64] + text[-64:]):
        return None
    body = ascii_digits(text.strip())
    body = body[:-1].rstrip() if body.endswith(".") else body
    if body[:1] in _MINUS_SIGNS:
        body = "-" + body[1:]
    for left, right in _WRAPPERS:
        if body.startswith(left) and body.endswith(right) and len(body) >= len(left) + len(right):
            body = body[len(left) : len(body) - len(right)].strip()
            break
    body = _SEPARATORS.sub(_separator, body).strip()
    m = _PLAIN.fullmatch(body) or _GROUPED.fullmatch(body) or _SPACED.fullmatch(body)
    if m is None:
        return None
    sign, whole, frac = m.group(1), m.group(2).replace(",", "").replace(" ", ""), m.group(3) or ""
    whole, frac = whole.lstrip("0") or "0", frac.rstrip("0")
    if whole == "0" and not frac:
        return "0"
    return ("-" if sign == "-" else "") + whole + ("." + frac if frac else "")


def _separator(m: re.Match) -> str:
    return "" if m.group(0) == "\\!" else " "  # "\\!" takes space away: "1,\\!080" is 1,080


def to_int(digits: str) -> int:
    """``int(digits)`` for a string of decimal digits (optionally signed) of any length."""
    if len(digits) <= _CHUNK:
        return int(digits)
    if digits[0] in "+-":
        value = to_int(digits[1:])
        return -value if digits[0] == "-" else value
    half = len(digits) // 2
    return to_int(digits[:half]) * 10 ** (len(digits) - half) + to_int(digits[half:])


def int_text(n: int) -> str:
    """``str(n)`` for an int of any size."""
    if n < 0:
        return "-" + int_text(-n)
    if n.bit_length() <= _CHUNK * 3:  # under 3,612 digits
        return str(n)
    digits = int(n.bit_length() * 0.30103) // 2
    high, low = divmod(n, 10**digits)
    return int_text(high) + int_text(low).rjust(digits, "0")


def to_fraction(text: str) -> Fraction:
    """``Fraction(text)`` for a decimal literal (``123``, ``3.25``, ``.5``) of any length."""
    if len(text) <= _CHUNK:
        if text.isdigit():  # (Fraction(int) skips Fraction(str)'s parsing)
            return Fraction(int(text))
        return Fraction(text)
    whole, _, frac = text.partition(".")
    return Fraction(to_int((whole or "0") + frac), 10 ** len(frac))


def fraction_text(value: Fraction) -> str:
    """``str(value)`` for a Fraction of any size."""
    if value.denominator == 1:
        return int_text(value.numerator)
    return int_text(value.numerator) + "/" + int_text(value.denominator)


__all__ = ["ascii_digits", "fraction_text", "int_text", "plain_numeral", "to_fraction", "to_int"]
