"""The benchmark code runs and reports its figures (no timing is asserted here)."""

from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from bench import codec  # noqa: E402


def test_codec_benchmark_produces_a_ratio_and_its_section():
    result = codec.run(quick=True)
    assert set(result["rates"]) == {"mip6", "scapy"}
    assert result["ratio"] > 0 and result["message_octets"] == 80
    text = codec.markdown(result)
    assert "mip6" in text and "scapy (baseline)" in text and "Ratio" in text
