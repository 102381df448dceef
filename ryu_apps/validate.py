"""Configuration validation shared by nemo-ha and nemo-mr: typed readers that collect
every problem with the file and key path it concerns, and YAML loading.

A reader gets values out of a parsed YAML tree with a converter per key; a converter
raises ``ValueError``/``TypeError`` with what is wrong, the :class:`Checker` turns that
into ``"<file>: <key.path>: <value>: <problem>"`` and carries on, so one run reports
every problem. :class:`ConfigError` lists them.
"""

from __future__ import annotations

import binascii
import ipaddress
import math
import os
from typing import Any, Callable, Dict, List, Tuple

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address
IPv6Network = ipaddress.IPv6Network


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: List[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class Checker:
    """Collects problems while typed values are read out of a YAML tree."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: List[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{self.source}: {path}: {message}")

    def get(self, tree: Dict[str, Any], path: str, key: str, convert: Callable[[Any], Any],
            default: Any = ..., what: str = "") -> Any:
        full = f"{path}.{key}" if path else key
        if key not in tree or tree[key] is None:
            if default is ...:
                self.fail(full, f"missing (required{': ' + what if what else ''})")
            return None if default is ... else default
        try:
            return convert(tree[key])
        except (ValueError, TypeError) as exc:
            self.fail(full, f"{tree[key]!r}: {exc}")
            return None

    def mapping(self, value: Any, path: str) -> Dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path or "(top level)", f"must be a mapping, got {type(value).__name__}")
            return {}
        return value

    def unknown_keys(self, tree: Dict[str, Any], path: str, known: Tuple[str, ...]) -> None:
        for key in tree:
            if key not in known:
                self.fail(f"{path}.{key}" if path else str(key),
                          f"unknown key (known: {', '.join(known)})")


def as_ipv6(value: Any) -> IPv6Address:
    return IPv6Address(str(value))


def as_ipv4(value: Any) -> IPv4Address:
    return IPv4Address(str(value))


def as_prefix(value: Any) -> IPv6Network:
    try:
        return IPv6Network(str(value))
    except ValueError as exc:
        if "host bits" in str(exc):
            raise ValueError("has host bits set") from None
        raise


def list_of(convert: Callable[[Any], Any]) -> Callable[[Any], Tuple[Any, ...]]:
    def run(value: Any) -> Tuple[Any, ...]:
        if isinstance(value, (str, int)):
            value = [value]
        if not isinstance(value, list):
            raise TypeError("must be a list")
        out = []
        for index, item in enumerate(value):
            try:
                out.append(convert(item))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"item {index} ({item!r}): {exc}") from None
        return tuple(out)
    return run


def bounded_int(low: int, high: int) -> Callable[[Any], int]:
    def run(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError("must be an integer")
        number = int(value, 0) if isinstance(value, str) else value
        if not low <= number <= high:
            raise ValueError(f"must be in {low}..{high}")
        return number
    return run


def positive_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("must be a number")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError("must be a positive finite number")
    return number


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("must be true or false (unquoted)")
    return value


def as_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("must be a non-empty string")
    return value


def path_in(base_dir: str) -> Callable[[Any], str]:
    def run(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise TypeError("must be a file path")
        return os.path.join(base_dir, value)
    return run


def as_mac(value: Any) -> str:
    text = str(value).lower()
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p)
                                  for p in parts):
        raise ValueError("is not a MAC address like 02:00:00:00:00:01")
    return text


def as_hex_key(value: Any) -> bytes:
    if not isinstance(value, str):
        # YAML turns an unquoted 0x... or all-digit key into a number: its hex is lost.
        raise TypeError("must be a quoted string of hex digits, e.g. '000102...'")
    text = value.strip().lower().replace(":", "")
    if text.startswith("0x"):
        text = text[2:]
    try:
        key = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise ValueError("must be hexadecimal (e.g. 000102...)") from None
    if len(key) < 16:
        raise ValueError(f"is {len(key)} octets; use at least 16 (HMAC-SHA1 key)")
    return key


def print_problems(path: str, error: ConfigError) -> None:
    """Every problem on stderr, then a count: what ``--check`` and a failed start show."""
    import sys

    for problem in error.problems:
        print(problem, file=sys.stderr)
    print(f"{path}: {len(error.problems)} problem(s)", file=sys.stderr)


def read_yaml(path: str) -> Any:
    """The parsed YAML of ``path``; unreadable or invalid files raise ConfigError."""
    import yaml

    # libyaml's parser when PyYAML has it: the pure-Python one needs ~10 s for a
    # 10,000-MR configuration. Both build the same safe subset of Python objects.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=loader)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
