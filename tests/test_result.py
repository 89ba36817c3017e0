"""The result notebooks' API (memloc.result.Result): files, claims as one Holm family, the
provenance box."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from memloc.profiles import load_profile
from memloc.result import Result, result_id


def test_the_result_id_comes_from_the_folder():
    assert result_id("book/results/cpu/f3b_sslmem_vs_unitmem") == "F3b"
    assert result_id("x/t1_layermem") == "T1"


def test_claims_are_one_holm_family_recorded_with_id_and_profile(tmp_path):
    res = Result.start(tmp_path / "a9_example", "quick")
    entries = res.claims(
        dict(claim="one", test="t-test{holm}; holds if positive", statistic=3.0, p_value=0.01),
        dict(claim="two", test="exact test", statistic=1.0, p_value=0.04, holds=True),
        dict(claim="three", test="a count", statistic=5, holds=False),
        dict(claim="four", test="sign", statistic=1.0, p_value=0.3, testable=False, reason="no g"),
    )
    # Holm by hand over the three p-values: 3 x .01, max(2 x .04, .03), max(.3, .08).
    assert [e["p_value"] for e in entries] == pytest.approx([0.03, 0.08, None, 0.3])
    note = "; Holm over the page's 3 claims"
    assert entries[0]["test"] == f"t-test{note}; holds if positive"
    assert entries[1]["test"] == "exact test" + note and entries[2]["test"] == "a count"
    assert [e["verdict"] for e in entries] == [
        "supported",
        "not supported",
        "not supported",
        "not testable here",
    ]
    stored = json.loads((tmp_path / "a9_example" / "verdict.json").read_text())
    assert {e["result"] for e in stored} == {"A9"} and {e["profile"] for e in stored} == {"quick"}
    assert "**supported** — one" in res.verdicts()


def test_claims_can_keep_p_values_the_page_adjusted(tmp_path):
    res = Result.start(tmp_path / "a8_x", "cpu")
    entries = res.claims(
        dict(claim="c1", test="McNemar, Holm-adjusted", statistic=0.1, p_value=0.02, context=True),
        dict(claim="c2", test="McNemar, Holm-adjusted", statistic=0.1, p_value=0.5, context=True),
        adjust=False,
    )
    assert [e["p_value"] for e in entries] == [0.02, 0.5]
    assert [e["verdict"] for e in entries] == ["context", "context"]
    assert "Holm over" not in entries[0]["test"]


def test_tables_are_saved_unrounded_and_shown_without_the_index(tmp_path):
    res = Result.start(tmp_path / "t9_x", "quick", {"epochs": 3})
    df = pd.DataFrame({"layer": ["1", "2"], "t": [0.123456, 2.5]}, index=[7, 8])
    shown = res.table(df, "tests", digits=2)
    assert pd.read_csv(tmp_path / "t9_x" / "tests.csv")["t"].tolist() == [0.123456, 2.5]
    html = shown.to_html()
    assert "0.12" in html and "0.123456" not in html and ">7<" not in html
    res.table(df)  # shown only: no file
    assert sorted(p.name for p in (tmp_path / "t9_x").iterdir()) == ["tests.csv"]
    box = res.finish(n_points=10)
    info = json.loads(box.removeprefix("```json\n").removesuffix("\n```"))
    assert info["profile"] == "quick" and info["profile_overrides"] == {"epochs": 3}
    assert info["n_points"] == 10 and info["wall_time_s"] >= 0
    # A table shown with its index keeps the index in the CSV too, as its first column.
    res.table(df.rename_axis("row"), "indexed", index=True)
    saved = pd.read_csv(tmp_path / "t9_x" / "indexed.csv")
    assert saved.columns.tolist() == ["row", "layer", "t"] and saved["row"].tolist() == [7, 8]


def test_the_page_check_is_every_claims_default_and_heads_the_verdicts(tmp_path):
    from memloc.regime import PairCheck

    def check(testable, reason, text):
        return PairCheck(testable, reason, None, None, float("nan"), None, text)

    res = Result.start(tmp_path / "f9_x", "quick")
    shown = res.check({"SSL": check(True, "", "SSL ok."), "SL": check(False, "no g.", "SL no.")})
    assert shown == "SSL ok.\n\nSL no."
    assert not res.testable and res.reason == "Not testable here: SL: no g."
    first, second = res.claims(
        dict(claim="a", test="t", statistic=1.0, p_value=0.01),
        dict(claim="b", test="t", statistic=1.0, p_value=0.01, testable=True, reason=""),
    )
    assert first["verdict"] == "not testable here" and second["verdict"] == "supported"
    page = res.verdicts("A note.", "")
    assert page.startswith("*Not testable here: SL: no g.*\n\n") and page.endswith("\n\nA note.")
    # One check passing: no reason above the verdicts.
    res = Result.start(tmp_path / "f8_x", "quick")
    assert res.check(check(True, "", "fine.")) == "fine." and res.testable
    res.claims(dict(claim="a", test="t", statistic=1.0, p_value=0.01))
    assert res.verdicts().startswith("- **supported**")


def test_the_provenance_lists_the_pairs_the_page_described(tmp_path):
    class Pair:  # what describe reads of an EncoderPair
        framework = "simclr"
        hashes = {"f": "abc", "g": "def"}
        profile = load_profile("quick")

    sl = type("SL", (Pair,), {"framework": "supervised", "hashes": {"f": "123"}})
    res = Result.start(tmp_path / "t9_x", "quick")
    head = res.describe(Pair(), "N = 10.", others={"SL": sl()})
    assert head.endswith("simclr. N = 10.")
    box = res.finish(n_points=10)
    info = json.loads(box.removeprefix("```json\n").removesuffix("\n```"))
    assert info["encoder_hashes"] == {"simclr": Pair.hashes, "SL": {"f": "123"}}
