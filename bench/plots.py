"""PNG plots of the stored benchmark results, one per section, for docs/benchmarks.md.

Each ``figure_<section>(result)`` turns one section's result dict (the JSON in
``bench/results/<section>.json``) into a matplotlib ``Figure``: measured values beside
the same run's baseline, the target drawn as a line, the measured ratio in the titles.
``plot_<section>(result, out_dir)`` writes it as ``out_dir/bench-<section>.png`` and
returns that path relative to ``out_dir``'s parent (the directory of the document that
links it), e.g. ``images/bench-codec.png``; ``plot_all`` does every section it is given.

The plots are drawn from whatever the dict holds: a missing field, an older layout, a
``None``/NaN value or a case that never finished gives a smaller plot, a "not reached"
label or a panel with a note, never an exception. Only the Agg renderer is used (no
display, no pyplot state); matplotlib is imported when a figure is drawn, so importing
this module costs nothing.
"""

from __future__ import annotations

import importlib
import math
import statistics
import sys
import textwrap
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Union)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Colours: the measured system, the same-run baseline, the target.
MEASURED = "#1f77b4"
MEASURED_LIGHT = "#9ecae1"
BASELINE = "#8c8c8c"
BASELINE_LIGHT = "#d0d0d0"
TARGET = "#d62728"
DPI = 100

Result = Mapping[str, Any]


# -- tolerant access to the result dicts ------------------------------------------------------

def _get(data: Any, *path: Any) -> Any:
    """data[path[0]][path[1]]..., or None where a step is missing or of the wrong type."""
    for key in path:
        if isinstance(data, Mapping):
            data = data.get(key)
        elif isinstance(data, Sequence) and not isinstance(data, str) and isinstance(key, int):
            data = data[key] if -len(data) <= key < len(data) else None
        else:
            return None
    return data


def _num(value: Any) -> Optional[float]:
    """A finite float, or None (missing, None, NaN, text, bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _samples(value: Any) -> List[float]:
    """The numbers held by a number, a list, or a {min, median, max, samples} dict."""
    if isinstance(value, Mapping):
        got = _samples(value.get("samples"))
        return got or [x for x in (_num(value.get(k)) for k in ("min", "median", "max"))
                       if x is not None]
    if isinstance(value, (list, tuple)):
        return [x for x in (_num(v) for v in value) if x is not None]
    x = _num(value)
    return [] if x is None else [x]


def _stat(value: Any, which: str = "median") -> Optional[float]:
    """min/median/max of a stats dict (or of its samples, or of a list), or a plain number."""
    if isinstance(value, Mapping) and _num(value.get(which)) is not None:
        return _num(value.get(which))
    values = _samples(value)
    if not values:
        return None
    return {"min": min, "max": max}.get(which, statistics.median)(values)


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def _const(module: str, name: str, default: float) -> float:
    """A target constant of bench.<module>, so that the plots follow the benchmark's own."""
    try:
        return float(getattr(importlib.import_module("bench." + module), name, default))
    except Exception:  # the module may not import everywhere; the default is the documented one
        return default


def _fmt(value: Optional[float], spec: str = ",.0f", unit: str = "") -> str:
    return "n/a" if value is None else format(value, spec) + unit


def _verdict(met: Any) -> str:
    return {True: "met", False: "missed"}.get(met, "verdict n/a")


# -- drawing helpers ----------------------------------------------------------------------------

def _new_figure(width: float, height: float, title: str) -> "Figure":
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    fig.suptitle(title, fontsize=11)
    return fig


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, textwrap.fill(text, 45), transform=ax.transAxes, ha="center",
            va="center", fontsize=9, color="#555555")


def _empty(ax, why: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    _note(ax, why)


def _panel(ax, draw: Callable[..., None], *args: Any) -> None:
    """Draw one panel; if the data does not fit, leave the panel with a note instead."""
    try:
        draw(ax, *args)
    except Exception as exc:  # noqa: BLE001 - a plot must never lose the results
        ax.cla()
        _empty(ax, "not plotted: %s: %s" % (type(exc).__name__, exc))


def _dots(ax, x: float, values: Sequence[float], spread: float = 0.08, **kw: Any) -> None:
    """Individual samples as dots, spread evenly around x so that equal values stay visible."""
    n = len(values)
    if not n:
        return
    xs = [x + spread * (2 * i / (n - 1) - 1) if n > 1 else x for i in range(n)]
    ax.scatter(xs, values, s=12, zorder=3, color="black", alpha=0.7, linewidths=0, **kw)


def _bar(ax, x: float, value: Optional[float], width: float, color: str, label: str,
         low: Optional[float] = None, high: Optional[float] = None, missing: str = "n/a",
         **kw: Any) -> bool:
    """One bar with optional min-max whiskers; a missing value leaves ``missing`` instead."""
    if value is None:
        ax.text(x, 0.02, missing, transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=8, color="#555555", rotation=90 if "\n" not in missing
                and len(missing) > 4 else 0)
        return False
    yerr = None
    if low is not None and high is not None:
        yerr = [[max(0.0, value - low)], [max(0.0, high - value)]]
    ax.bar([x], [value], width, color=color, label=label, yerr=yerr, capsize=3,
           error_kw={"elinewidth": 1, "ecolor": "#333333"}, **kw)
    return True


def _target_segment(ax, x: float, half_width: float, y: Optional[float], label: str,
                    style: str = "--", text: str = "") -> None:
    """A target as a dashed segment over the bar or category it applies to."""
    if y is not None:
        ax.hlines(y, x - half_width, x + half_width, colors=TARGET, linestyles=style,
                  linewidth=1.5, label=label, zorder=4)
        if text:
            ax.annotate(text, (x + half_width, y), textcoords="offset points", xytext=(-2, 3),
                        ha="right", va="bottom", fontsize=8, color=TARGET)


def _target_line(ax, value: float, label: str) -> None:
    """The dashed line every panel draws at its target."""
    ax.axhline(value, color=TARGET, linestyle="--", linewidth=1.5, label=label)


def _dedup_legend(ax, **kw: Any) -> None:
    """A legend with one entry per label (bars and segments repeat them per group)."""
    handles, labels = ax.get_legend_handles_labels()
    seen: Dict[str, Any] = {}
    for handle, label in zip(handles, labels):
        seen.setdefault(label, handle)
    if seen:
        kw.setdefault("fontsize", 8)
        ax.legend(list(seen.values()), list(seen), **kw)


def _figure_legend(fig, axes: Iterable[Any]) -> None:
    """One legend under the panels, from the labels of all of them."""
    seen: Dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center",
                   ncol=min(4, len(seen)), fontsize=8)


def _log_floor(ax, values: Iterable[Optional[float]], factor: float = 0.5) -> None:
    """Bars on a log axis start at the bottom: put it a little under the smallest value."""
    positive = [v for v in values if v is not None and v > 0]
    if positive:
        ax.set_ylim(bottom=min(positive) * factor)


def _save(fig, out_dir: Union[str, Path], section: str) -> str:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = "bench-%s.png" % section
    fig.savefig(out / name, format="png", dpi=DPI, metadata={"Title": fig.get_suptitle()})
    return "%s/%s" % (out.name, name)


# -- codec ---------------------------------------------------------------------------------------

def figure_codec(result: Result) -> "Figure":
    """ops/s (min/median/max) of mip6 and scapy on a log axis, target = N x scapy's median."""
    target = _const("codec", "TARGET_RATIO", 20.0)
    rates = _get(result, "rates")
    ours, theirs = _stat(_get(rates, "mip6")), _stat(_get(rates, "scapy"))
    ratio = _num(_get(result, "ratio")) or _ratio(ours, theirs)
    lo, hi = _num(_get(result, "ratio_min")), _num(_get(result, "ratio_max"))
    fig = _new_figure(8, 4.6, _get(result, "title") or "Codec")
    ax = fig.add_subplot()

    def draw(ax) -> None:
        ax.set_yscale("log")
        width = 0.38
        kinds = ("min", "median", "max")
        values: List[Optional[float]] = []
        for offset, name, label, color in ((-width / 2, "mip6", "mip6 (measured)", MEASURED),
                                           (width / 2, "scapy", "scapy (same-run baseline)",
                                            BASELINE)):
            for i, kind in enumerate(kinds):
                value = _stat(_get(rates, name), kind)
                values.append(value)
                if _bar(ax, i + offset, value, width, color, label):
                    ax.annotate(_fmt(value), (i + offset, value), textcoords="offset points",
                                xytext=(0, 2), ha="center", va="bottom", fontsize=8)
        if theirs is not None:
            _target_line(ax, theirs * target, "target: %gx scapy's median" % target)
            values.append(theirs * target)
        _log_floor(ax, values)
        ax.set_ylim(top=max([v for v in values if v] or [1]) * 8)  # room for the legend
        ax.set_xticks(range(len(kinds)), ["min", "median", "max"])
        ax.set_xlabel("samples per implementation (one op = decode + encode of an %s-octet "
                      "signed BU)" % _fmt(_num(_get(result, "message_octets")), ".0f"))
        ax.set_ylabel("operations/s (log scale)")
        _dedup_legend(ax, loc="upper center", ncol=3)

    _panel(ax, draw)
    ax.set_title("mip6 / scapy (median/median): %s%s; target >= %gx: %s" % (
        _fmt(ratio, ".1f", "x"),
        " (range %.1fx-%.1fx)" % (lo, hi) if lo is not None and hi is not None else "",
        target, _verdict(_get(result, "met"))), fontsize=10)
    return fig


def plot_codec(result: Result, out_dir: Union[str, Path]) -> str:
    """Write bench-codec.png into out_dir; returns its path relative to out_dir's parent."""
    return _save(figure_codec(result), out_dir, "codec")


# -- signalling ----------------------------------------------------------------------------------

def _mrs_label(case: Any) -> str:
    mrs = _num(_get(case, "mrs"))
    return "? MRs" if mrs is None else "%s MR%s" % (format(mrs, ",.0f"), "" if mrs == 1 else "s")


def figure_signalling(result: Result) -> "Figure":
    """Per MR count: max BU/s of the HA vs the echo app, and p50/p99 at half load vs 10 ms."""
    target_ratio = _const("signalling", "TARGET_RATIO", 0.5)
    target_p99 = _const("signalling", "TARGET_P99_MS", 10.0)
    cases = [c for c in (_get(result, "cases") or []) if isinstance(c, Mapping)]
    main = cases[-1] if cases else {}
    ratio = _num(_get(result, "ratio")) or _num(_get(main, "max_rate", "ratio"))
    p99 = _num(_get(result, "p99_ms_half_load")) or _num(_get(main, "half_load", "ha_p99_ms"))
    fig = _new_figure(12, 4.8, "%s\nmax rate %s of echo (target >= %gx): %s; p99 at half load "
                      "%s (target <= %g ms): %s" % (
                          _get(result, "title") or "Signalling", _fmt(ratio, ".2f", "x"),
                          target_ratio, _verdict(_get(result, "met_rate")),
                          _fmt(p99, ".1f", " ms"), target_p99,
                          _verdict(_get(result, "met_latency"))))
    rate_ax, lat_ax = fig.subplots(1, 2)

    def rates(ax) -> None:
        if not cases:
            raise ValueError("no cases in the result")
        width = 0.35
        for i, case in enumerate(cases):
            mr = _get(case, "max_rate") or {}
            ha, echo = _num(mr.get("ha")), _num(mr.get("echo"))
            if _bar(ax, i - width / 2, ha, width, MEASURED, "home agent (median)"):
                _dots(ax, i - width / 2, _samples(mr.get("ha_samples")), label="samples")
                r = _num(mr.get("ratio")) or _ratio(ha, echo)
                ax.annotate(_fmt(r, ".2f", "x echo"),
                            (i - width / 2, max([ha] + _samples(mr.get("ha_samples")))),
                            textcoords="offset points", xytext=(0, 5), ha="center",
                            fontsize=9, fontweight="bold")
            if _bar(ax, i + width / 2, echo, width, BASELINE, "echo app (same-run baseline)"):
                _dots(ax, i + width / 2, _samples(mr.get("echo_samples")), label="samples")
                _target_segment(ax, i - width / 2, width * 0.6, echo * target_ratio,
                                "target: %gx echo" % target_ratio)
        ax.set_xticks(range(len(cases)), [_mrs_label(c) for c in cases])
        ax.set_ylabel("BU -> BA per second (closed loop, window %s)"
                      % _fmt(_num(_get(result, "window")), ".0f"))
        ax.set_ylim(top=ax.get_ylim()[1] * 1.3)  # room for the legend
        _dedup_legend(ax, loc="upper center", ncol=2)
        ax.set_title("max rate per MR count (ratio = HA / echo, medians)", fontsize=10)

    def latency(ax) -> None:
        if not cases:
            raise ValueError("no cases in the result")
        ax.set_yscale("log")
        width = 0.2
        bars = (("ha_p50_ms", None, "HA p50", MEASURED_LIGHT),
                ("ha_p99_ms", "ha_p99_samples", "HA p99", MEASURED),
                ("echo_p50_ms", None, "echo p50 (baseline)", BASELINE_LIGHT),
                ("echo_p99_ms", "echo_p99_samples", "echo p99 (baseline)", BASELINE))
        values: List[Optional[float]] = []
        labels = []
        for i, case in enumerate(cases):
            half = _get(case, "half_load") or {}
            for j, (key, samples, label, color) in enumerate(bars):
                x = i + (j - 1.5) * width
                value = _num(half.get(key))
                values.append(value)
                if _bar(ax, x, value, width, color, label):
                    _dots(ax, x, _samples(half.get(samples)), spread=0.04,
                          label="p99 per sample")
                    values.extend(_samples(half.get(samples)))
                    if key == "ha_p99_ms":
                        ax.annotate(_fmt(value, ".1f" if value < 100 else ".0f", " ms"),
                                    (x, value), textcoords="offset points", xytext=(0, 5),
                                    ha="center", fontsize=9, fontweight="bold")
            offered = _num(half.get("offered_rate"))
            labels.append("%s\nat %s" % (_mrs_label(case), _fmt(offered, ",.0f", " BU/s")))
        _target_line(ax, target_p99, "target: p99 <= %g ms" % target_p99)
        values.append(target_p99)
        _log_floor(ax, values)
        ax.set_ylim(top=max(v for v in values if v) * 4)
        ax.set_xticks(range(len(cases)), labels)
        ax.set_ylabel("BU -> BA latency (ms, log scale)")
        _dedup_legend(ax, loc="upper left", ncol=2)
        ax.set_title("latency at half the HA's max rate (same offered rate to echo)",
                     fontsize=10)

    _panel(rate_ax, rates)
    _panel(lat_ax, latency)
    return fig


def plot_signalling(result: Result, out_dir: Union[str, Path]) -> str:
    """Write bench-signalling.png into out_dir; returns its path relative to out_dir's parent."""
    return _save(figure_signalling(result), out_dir, "signalling")


# -- scale ---------------------------------------------------------------------------------------

def figure_scale(result: Result) -> "Figure":
    """Per MR count: registration vs the OVS floor, RSS, switch entries, restart readiness."""
    target_s = _const("scale", "TARGET_SECONDS_PER_40K", 60.0)
    target_mb = _const("scale", "TARGET_RSS_MB", 300.0)
    cases = [c for c in (_get(result, "cases") or []) if isinstance(c, Mapping)]
    main = cases[-1] if cases else {}
    ratio = _num(_get(result, "ratio")) or _ratio(_num(_get(main, "register", "seconds")),
                                                  _num(_get(main, "raw_install", "seconds")))
    per_40k = _num(_get(result, "seconds_per_40k_extrapolated"))
    if per_40k is None:
        seconds, bindings = _num(_get(main, "register", "seconds")), _num(_get(main, "bindings"))
        per_40k = seconds * 40000 / bindings if seconds is not None and bindings else None
    rss = _num(_get(main, "rss_mb", "bound"))
    fig = _new_figure(12, 8, "%s\nregistration %s the OVS floor at %s bindings; %s per 40,000 "
                      "(target <= %g s): %s; RSS %s (target <= %g MB): %s" % (
                          _get(result, "title") or "Scale", _fmt(ratio, ".1f", "x"),
                          _fmt(_num(_get(main, "bindings")), ",.0f"),
                          _fmt(per_40k, ".0f", " s"), target_s,
                          _verdict(_get(result, "met_time")), _fmt(rss, ".0f", " MB"),
                          target_mb, _verdict(_get(result, "met_rss"))))
    (reg_ax, rss_ax), (sw_ax, rs_ax) = fig.subplots(2, 2)
    labels = ["%s x 4" % _mrs_label(c) for c in cases]

    def need_cases() -> None:
        if not cases:
            raise ValueError("no cases in the result")

    def registration(ax) -> None:
        need_cases()
        width = 0.35
        for i, case in enumerate(cases):
            reg = _num(_get(case, "register", "seconds"))
            raw = _num(_get(case, "raw_install", "seconds"))
            if _bar(ax, i - width / 2, reg, width, MEASURED, "home agent: register all MRs",
                    missing="not reached"):
                ax.annotate(_fmt(_ratio(reg, raw), ".1f", "x floor"), (i - width / 2, reg),
                            textcoords="offset points", xytext=(0, 3), ha="center",
                            fontsize=9, fontweight="bold")
            _bar(ax, i + width / 2, raw, width, BASELINE,
                 "OVS floor: ovs-ofctl installs the same state")
        ticks = list(labels)
        if per_40k is not None:
            x = len(cases)
            ax.bar([x], [per_40k], width, color="white", edgecolor=MEASURED, hatch="//",
                   label="extrapolated to 40,000 bindings")
            ax.annotate(_fmt(per_40k, ".0f", " s"), (x, per_40k), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=9)
            ticks.append("40,000 bindings\n(extrapolated)")
        _target_line(ax, target_s, "target: 40,000 bindings in %g s" % target_s)
        ax.set_xticks(range(len(ticks)), ticks)
        ax.set_ylabel("seconds")
        ax.set_ylim(top=ax.get_ylim()[1] * 1.1)
        _dedup_legend(ax, loc="upper left")
        ax.set_title("registration time (BU per MR, 4 CoAs each)", fontsize=10)

    def memory(ax) -> None:
        need_cases()
        width = 0.27
        series = (("idle", "idle: configured, no binding (baseline)", BASELINE),
                  ("bound", "all MRs bound", MEASURED),
                  ("after_restart", "after restart", MEASURED_LIGHT))
        for i, case in enumerate(cases):
            for j, (key, label, color) in enumerate(series):
                value = _num(_get(case, "rss_mb", key))
                x = i + (j - 1) * width
                if _bar(ax, x, value, width, color, label):
                    ax.annotate(_fmt(value, ".0f"), (x, value), textcoords="offset points",
                                xytext=(0, 2), ha="center", fontsize=8)
        _target_line(ax, target_mb, "target: <= %g MB" % target_mb)
        ax.set_xticks(range(len(cases)), labels)
        ax.set_ylabel("home agent RSS (MB)")
        ax.set_ylim(top=ax.get_ylim()[1] * 1.25)
        _dedup_legend(ax, loc="upper left")
        ax.set_title("memory (VmRSS of nemo-ha)", fontsize=10)

    def switch(ax) -> None:
        need_cases()
        ax.set_yscale("log")
        width = 0.2
        series = (("flows", "flows after registration", MEASURED),
                  ("flows_after_restart", "flows after restart", MEASURED_LIGHT),
                  ("groups", "groups after registration", BASELINE),
                  ("groups_after_restart", "groups after restart", BASELINE_LIGHT))
        values: List[Optional[float]] = []
        for i, case in enumerate(cases):
            for j, (key, label, color) in enumerate(series):
                value = _num(_get(case, "switch", key))
                values.append(value)
                x = i + (j - 1.5) * width
                if _bar(ax, x, value, width, color, label):
                    ax.annotate(_fmt(value), (x, value), textcoords="offset points",
                                xytext=(0, 2), ha="center", fontsize=7)
        _log_floor(ax, values, 0.3)
        ax.set_ylim(top=max([v for v in values if v] or [10]) * 6)
        ax.set_xticks(range(len(cases)), labels)
        ax.set_ylabel("OVS entries (log scale)")
        _dedup_legend(ax, loc="upper left", ncol=2)
        ax.set_title("switch state (dump-aggregate, dump-groups)", fontsize=10)

    def restart(ax) -> None:
        need_cases()
        width = 0.35
        tops: List[float] = []
        pending = []  # "not reached" labels, placed once the axis height is known
        for i, case in enumerate(cases):
            for offset, key, label, color in (
                    (-width / 2, "first_start", "first start (no state file)", BASELINE),
                    (width / 2, "restart", "restart from the state file", MEASURED)):
                part = _get(case, key) or {}
                value = _num(part.get("connect_to_ready_s")) if part.get("ready") is not False \
                    else None
                x = i + offset
                if value is not None:
                    _bar(ax, x, value, width, color, label)
                    tops.append(value)
                    ax.annotate(_fmt(value, ".2f", " s"), (x, value),
                                textcoords="offset points", xytext=(0, 2), ha="center",
                                fontsize=8)
                else:
                    waited = _num(part.get("waited_s"))
                    why = "not reached"
                    if part.get("ready") is False and waited is not None:
                        why += "\n(not ready\nafter %.0f s)" % waited
                    pending.append((x, why, color))
        top = max(tops or [1.0]) * 1.6
        ax.set_ylim(0, top)
        ax.set_xlim(-0.6, len(cases) - 0.4)  # a missing bar must not shrink the axis
        for x, why, color in pending:
            ax.text(x, top * 0.05, why, ha="center", va="bottom", fontsize=8, color=color,
                    fontweight="bold")
        ticks = []
        for label, case in zip(labels, cases):
            changes = _get(case, "restart", "reconcile_changes")
            ticks.append("%s\nrestart reconciled: %s" % (
                label, "n/a" if changes is None else "%s change%s" % (
                    changes, "" if changes == 1 else "s")))
        ax.set_xticks(range(len(cases)), ticks)
        ax.set_ylabel("switch connect -> \"ready\" (s)")
        _dedup_legend(ax, loc="upper left")
        ax.set_title("restart from the state file (target: ready, 0 changes): %s"
                     % _verdict(_get(result, "met_restart")), fontsize=10)

    for ax, draw in ((reg_ax, registration), (rss_ax, memory), (sw_ax, switch),
                     (rs_ax, restart)):
        _panel(ax, draw)
    return fig


def plot_scale(result: Result, out_dir: Union[str, Path]) -> str:
    """Write bench-scale.png into out_dir; returns its path relative to out_dir's parent."""
    return _save(figure_scale(result), out_dir, "scale")


# -- data plane ----------------------------------------------------------------------------------

_PHASE_LABELS = {"4coa": "4 CoAs", "1coa": "1 CoA"}
_KINDS = (("tcp", "TCP (iperf3)", "throughput (Mbit/s)", 1e6),
          ("udp64", "UDP, 64-octet payloads", "received (kpackets/s)", 1e3))
_DIRECTIONS = (("down", "CN -> LAN"), ("up", "LAN -> CN"))


def figure_dataplane(result: Result) -> "Figure":
    """Tunnel vs plain per figure (phase x kind x direction), ratio labels, 0.8x segments."""
    target = _const("dataplane", "TARGET_RATIO", 0.8)
    phases = _get(result, "phases")
    phases = phases if isinstance(phases, Mapping) else {}
    order = [p for p in _PHASE_LABELS if isinstance(phases.get(p), Mapping)]
    order += [p for p in phases if p not in order and isinstance(phases.get(p), Mapping)]
    ratio = _num(_get(result, "ratio"))
    fig = _new_figure(11, 3.3 * max(1, len(order)) + 0.9, "%s\nworst tunnel / plain %s (%s); "
                      "target >= %gx plain on every figure: %s" % (
                          _get(result, "title") or "Data plane", _fmt(ratio, ".2f", "x"),
                          _get(result, "worst") or "n/a", target,
                          _verdict(_get(result, "met"))))
    axes = fig.subplots(max(1, len(order)), 2, squeeze=False)
    if not order:
        for ax in axes[0]:
            _empty(ax, "no phases in the result")
        return fig

    def draw(ax, phase: str, kind: str, name: str, unit: str, scale: float) -> None:
        figs = phases[phase]
        width = 0.35
        tops = []
        for i, (direction, _) in enumerate(_DIRECTIONS):
            f = _get(figs, "%s_%s" % (kind, direction)) or {}
            t, p = f.get("tunnel"), f.get("plain")

            def scaled(stats: Any, which: str) -> Optional[float]:
                value = _stat(stats, which)
                return None if value is None else value / scale

            tm, pm = scaled(t, "median"), scaled(p, "median")
            if _bar(ax, i - width / 2, tm, width, MEASURED, "NEMO tunnel (median, min-max)",
                    scaled(t, "min"), scaled(t, "max")):
                _dots(ax, i - width / 2, [x / scale for x in _samples(_get(t, "samples"))])
                r = _num(f.get("ratio")) or _ratio(tm, pm)
                ax.annotate(_fmt(r, ".2f", "x"), (i - width / 2, scaled(t, "max") or tm),
                            textcoords="offset points", xytext=(0, 4), ha="center",
                            fontsize=9, fontweight="bold")
            if _bar(ax, i + width / 2, pm, width, BASELINE, "plain forwarding (baseline)",
                    scaled(p, "min"), scaled(p, "max")):
                _dots(ax, i + width / 2, [x / scale for x in _samples(_get(p, "samples"))])
                _target_segment(ax, i - width / 2, width * 0.6, pm * target,
                                "target: %gx plain" % target)
            tops += [v for v in (scaled(t, "max"), scaled(p, "max"), tm, pm) if v]
        ax.set_ylim(0, max(tops or [1]) * 1.3)
        ax.set_xticks(range(len(_DIRECTIONS)), [label for _, label in _DIRECTIONS])
        ax.set_ylabel(unit)
        ax.set_title("%s, %s" % (_PHASE_LABELS.get(phase, phase), name), fontsize=10)

    for row, phase in enumerate(order):
        for col, (kind, name, unit, scale) in enumerate(_KINDS):
            _panel(axes[row][col], draw, phase, kind, name, unit, scale)
    _figure_legend(fig, axes.flat)
    return fig


def plot_dataplane(result: Result, out_dir: Union[str, Path]) -> str:
    """Write bench-dataplane.png into out_dir; returns its path relative to out_dir's parent."""
    return _save(figure_dataplane(result), out_dir, "dataplane")


# -- failover ------------------------------------------------------------------------------------

def _silent_gaps(figure: Mapping[str, Any]) -> List[float]:
    """Silent-failure gaps (ms) of one direction, whichever layout the result has."""
    silent = _get(figure, "silent")
    for candidate in (_get(figure, "silent_gap_ms"), _get(silent, "gap_ms_samples"),
                      _get(silent, "samples"), _get(silent, "gap_ms")):
        values = _samples(candidate)
        if values:
            return values
    return []


def figure_failover(result: Result) -> "Figure":
    """Largest gap per repetition: baseline, link down and silent failure, per direction."""
    target_link = _const("failover", "TARGET_LINK_MS", 50.0)
    target_silent = _const("failover", "TARGET_SILENT_MS", 300.0)
    figures = _get(result, "figures")
    figures = figures if isinstance(figures, Mapping) else {}
    directions = [d for d in ("downstream", "upstream") if isinstance(figures.get(d), Mapping)]
    directions += [d for d in figures if d not in directions and isinstance(figures[d], Mapping)]
    ratio = _num(_get(result, "ratio"))
    fig = _new_figure(12, 5, "%s\nlink down: worst median %s the baseline (%s), target <= %g ms:"
                      " %s; silent failure, target <= %g ms: %s" % (
                          _get(result, "title") or "Failover", _fmt(ratio, ".1f", "x"),
                          _get(result, "worst") or "n/a", target_link,
                          _verdict(_get(result, "link_met")), target_silent,
                          _verdict(_get(result, "silent_met"))))
    axes = fig.subplots(1, max(1, len(directions)), squeeze=False)[0]
    if not directions:
        _empty(axes[0], "no figures in the result")
        return fig

    def draw(ax, direction: str) -> None:
        f = figures[direction]
        ax.set_yscale("log")
        base = _samples(_get(f, "baseline_gap_ms"))
        link = _samples(_get(f, "link_failure_gap_ms"))
        silent = _get(f, "silent") or {}
        gaps = _silent_gaps(f)
        window_ms = (_num(silent.get("window_s")) or 0) * 1000 or None
        detected = silent.get("detected")
        if detected is None:  # no flag: a gap shorter than the window was noticed
            detected = bool(gaps) and (window_ms is None or max(gaps) < window_ms * 0.9)
        values: List[float] = base + link + gaps + [target_link, target_silent]
        for x, samples, color in ((0, base, BASELINE), (1, link, MEASURED)):
            if samples:
                _dots(ax, x, samples, spread=0.15, label="largest gap, one repetition")
                ax.hlines(statistics.median(samples), x - 0.25, x + 0.25, colors=color,
                          linewidth=3, label="median", zorder=2)
            else:
                ax.text(x, 0.5, "n/a", transform=ax.get_xaxis_transform(), ha="center")
        base_median = _stat(_get(f, "baseline_gap_ms"))
        if base_median is not None:
            ax.axhline(base_median, color=BASELINE, linestyle=":", linewidth=1.2,
                       label="noise floor (baseline median)")
        _target_segment(ax, 1, 0.4, target_link, "target: link down <= %g ms" % target_link,
                        text="target %g ms" % target_link)
        _target_segment(ax, 2, 0.4, target_silent, "target: silent <= %g ms" % target_silent,
                        style="-.", text="target %g ms" % target_silent)
        if gaps and detected:
            _dots(ax, 2, gaps, spread=0.15 if len(gaps) > 1 else 0)
            ax.hlines(statistics.median(gaps), 1.75, 2.25, colors=MEASURED, linewidth=3,
                      zorder=2)
        else:
            at = max(gaps) if gaps else window_ms
            if at:
                ax.scatter([2], [at], marker="^", s=60, color=TARGET, zorder=3,
                           label="not detected: still lost at the end")
                values.append(at)
            text = str(silent.get("text") or "")
            if "not detected" not in text:
                text = "not detected" + ("\n" + text if text else "")
            ax.text(2, (at or target_silent) * 0.5, text.replace(" (", "\n("), ha="center",
                    va="top", fontsize=8, color=TARGET)
        link_median = _stat(_get(f, "link_failure_gap_ms"))
        r = _num(f.get("ratio")) or _ratio(link_median, base_median)
        ax.set_xlim(-0.6, 2.6)
        ax.set_ylim(min(values) * 0.4, max(values) * 3)
        ax.set_xticks([0, 1, 2], ["baseline\n(no failure)", "link down\n(fail mr-isp1)",
                                  "silent failure\n(blackhole at isp1)"])
        ax.set_ylabel("largest gap of any flow (ms, log scale)")
        ax.set_title("%s: link down median %s = %s baseline; silent: %s" % (
            direction, _fmt(link_median, ".1f", " ms"), _fmt(r, ".1f", "x"),
            "median %.0f ms" % statistics.median(gaps) if gaps and detected
            else "not detected"), fontsize=10)

    for ax, direction in zip(axes, directions):
        _panel(ax, draw, direction)
    _figure_legend(fig, axes)
    return fig


def plot_failover(result: Result, out_dir: Union[str, Path]) -> str:
    """Write bench-failover.png into out_dir; returns its path relative to out_dir's parent."""
    return _save(figure_failover(result), out_dir, "failover")


# -- all sections --------------------------------------------------------------------------------

PLOTTERS: Dict[str, Callable[[Result, Union[str, Path]], str]] = {
    "codec": plot_codec, "signalling": plot_signalling, "scale": plot_scale,
    "dataplane": plot_dataplane, "failover": plot_failover,
}


def plot_all(results: Union[Iterable[Result], Mapping[str, Result]],
             out_dir: Union[str, Path]) -> Dict[str, str]:
    """Plot every known section given (a list of result dicts or {section: result}).

    Returns {section: path relative to out_dir's parent}. A section that cannot be
    plotted is reported on stderr and left out; it never stops the others.
    """
    if isinstance(results, Mapping):
        results = [dict(r, section=r.get("section", name)) if isinstance(r, Mapping) else r
                   for name, r in results.items()]
    paths: Dict[str, str] = {}
    for result in results:
        section = _get(result, "section")
        plot = PLOTTERS.get(section) if isinstance(section, str) else None
        if plot is None:
            continue
        try:
            paths[section] = plot(result, out_dir)
        except Exception as exc:  # noqa: BLE001 - report and go on with the other sections
            print("bench: plot of %s failed: %s: %s" % (section, type(exc).__name__, exc),
                  file=sys.stderr)
    return paths
