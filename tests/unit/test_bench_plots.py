"""bench.plots: a PNG per section from the stored results, and from partial or odd ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from matplotlib.text import Text  # noqa: E402

from bench import plots  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
SECTIONS = sorted(plots.PLOTTERS)
FIGURES = {name: getattr(plots, "figure_" + name) for name in SECTIONS}
# How each figure prints the section's ratio.
RATIO_FORMAT = {"codec": "%.1fx", "signalling": "%.2fx", "scale": "%.1fx",
                "dataplane": "%.2fx", "failover": "%.1fx"}


def stored(section: str) -> dict:
    path = RESULTS / (section + ".json")
    if not path.exists():
        pytest.skip("no stored %s results" % section)
    return json.loads(path.read_text())


def texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(Text))


def assert_png(out_dir: Path, relative: str, section: str) -> None:
    assert relative == "%s/bench-%s.png" % (out_dir.name, section)
    data = (out_dir.parent / relative).read_bytes()
    assert data.startswith(PNG) and len(data) > 1000


@pytest.mark.parametrize("section", SECTIONS)
def test_stored_results_plot_completely_with_their_ratio(section, tmp_path):
    result = stored(section)
    fig = FIGURES[section](result)
    text = texts(fig)
    assert "not plotted" not in text
    assert RATIO_FORMAT[section] % result["ratio"] in text
    fig.set_layout_engine("none")  # the layout is checked by eye; it doubles the time here
    out = tmp_path / "images"
    assert_png(out, plots._save(fig, out, section), section)


@pytest.mark.parametrize("section", SECTIONS)
def test_a_bare_result_still_writes_a_png(section, tmp_path):
    out = tmp_path / "images"
    assert_png(out, plots.PLOTTERS[section]({"section": section}, out), section)


def test_codec_from_a_small_dict_and_without_scapy():
    result = {"title": "Codec", "ratio": 33.3, "met": True,
              "rates": {"mip6": {"min": 9e4, "median": 1e5, "max": 1.1e5},
                        "scapy": {"samples": [2900, 3000, 3100]}}}
    text = texts(plots.figure_codec(result))
    assert "33.3x" in text and "100,000" in text and "target: 20x" in text
    del result["rates"]["scapy"], result["ratio"]
    assert "n/a" in texts(plots.figure_codec(result))


def test_signalling_ratio_computed_when_the_field_is_missing():
    result = {"cases": [{"mrs": 10, "max_rate": {"ha": 1000.0, "echo": 4000.0},
                         "half_load": {"ha_p99_ms": 3.0, "ha_p50_ms": None}}]}
    text = texts(plots.figure_signalling(result))
    assert "0.25x" in text and "10 MRs" in text and "not plotted" not in text


def test_scale_restart_never_ready_and_missing_values_read_not_reached():
    case = {"mrs": 10, "bindings": 40, "register": {"seconds": None},
            "raw_install": {"seconds": 1.0}, "rss_mb": {"idle": 50.0, "bound": float("nan")},
            "restart": {"ready": False, "waited_s": 90.0, "connect_to_ready_s": float("nan"),
                        "reconcile_changes": 0}}
    fig = plots.figure_scale({"cases": [case]})
    text = texts(fig)
    assert text.count("not reached") >= 2 and "after 90 s" in text
    assert "not plotted" not in text


def test_scale_with_a_wrong_type_keeps_the_other_panels():
    result = {"cases": [{"mrs": 1, "bindings": 4, "register": {"seconds": 1.0},
                         "raw_install": {"seconds": 0.5}, "switch": "broken",
                         "rss_mb": {"bound": 20.0}}], "ratio": 2.0}
    text = texts(plots.figure_scale(result))
    assert "2.0x" in text and "20 MB" in text


def test_dataplane_one_phase_without_samples():
    figure = {"tunnel": {"min": 7e8, "median": 8e8, "max": 9e8},
              "plain": {"min": 9e8, "median": 1e9, "max": 1.1e9}}
    result = {"phases": {"4coa": {"tcp_down": figure}}, "ratio": 0.8, "worst": "4coa/tcp_down"}
    text = texts(plots.figure_dataplane(result))
    assert "0.80x" in text and "4 CoAs" in text and "not plotted" not in text


def test_failover_silent_failure_not_detected_and_measured():
    down = {"baseline_gap_ms": {"samples": [10.0, 12.0]},
            "link_failure_gap_ms": {"samples": [20.0, 30.0]}, "ratio": 2.5,
            "silent": {"gap_ms": 5000.0, "detected": False, "window_s": 5.0,
                       "text": "> 5.0 s (not detected)"}}
    result = {"figures": {"downstream": down}, "ratio": 2.5}
    text = texts(plots.figure_failover(result))
    assert "2.5x" in text and "not detected" in text
    # the format after liveness probing: a gap per repetition
    down["silent"] = {"gap_ms": {"min": 120.0, "median": 150.0, "max": 200.0,
                                 "samples": [120.0, 150.0, 200.0]}, "detected": True}
    text = texts(plots.figure_failover(result))
    assert "median 150 ms" in text and "not detected" not in text
    # and with no flag at all, a silent gap of plain numbers
    down["silent"] = {"gap_ms": [100.0, 140.0]}
    assert "median 120 ms" in texts(plots.figure_failover(result))


def test_plot_all_skips_unknown_sections_and_survives_a_failing_one(tmp_path, monkeypatch,
                                                                     capsys):
    def broken(result, out_dir):
        raise RuntimeError("boom")

    monkeypatch.setitem(plots.PLOTTERS, "scale", broken)
    out = tmp_path / "images"
    paths = plots.plot_all({"codec": {}, "scale": {}, "other": {}}, out)
    assert paths == {"codec": "images/bench-codec.png"}
    assert "plot of scale failed: RuntimeError: boom" in capsys.readouterr().err


def test_write_doc_links_the_images_and_survives_a_plot_failure(tmp_path, monkeypatch, capsys):
    import bench.__main__ as main

    written = []

    def plot_codec(result, out_dir):  # the plot itself is tested above; this is the wiring
        written.append(Path(out_dir))
        return "images/bench-codec.png"

    monkeypatch.setattr(main, "DOC", tmp_path / "benchmarks.md")
    monkeypatch.setattr(plots, "PLOTTERS", {"codec": plot_codec})
    results = [stored("codec")]
    main.write_doc(results)
    doc = (tmp_path / "benchmarks.md").read_text()
    assert written == [tmp_path / "images"]
    assert "![%s](images/bench-codec.png)" % results[0]["title"] in doc

    def broken(results, out_dir):
        raise ImportError("no matplotlib")

    monkeypatch.setattr(plots, "plot_all", broken)
    main.write_doc(results)
    doc = (tmp_path / "benchmarks.md").read_text()
    assert "![" not in doc and "## " + results[0]["title"] in doc
    assert "plots not written" in capsys.readouterr().err
