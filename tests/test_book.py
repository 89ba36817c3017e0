"""The book (memloc.book, run by the Snakemake workflow) and figure helpers (memloc.figures).

The workflow test executes two throwaway notebooks in a temporary directory. One records a
verdict, the other fails in its second cell. It checks failure reporting, re-execution when a
parameter changes, nothing re-executed when nothing changed, and the pages written for the
book. The slow test builds the real book.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from memloc import book
from memloc.utils import repo_root

GOOD = """\
# %% [markdown]
# # A throwaway result

# %% tags=["parameters"]
profile = "cpu"
out_dir = "unset"
seed = 0

# %%
from pathlib import Path
from memloc.book import record_claim

Path(out_dir, "seen.json").write_text(f'{{"profile": "{profile}", "seed": {seed}}}')
record_claim(out_dir, result="G1", claim="two is more than one", test="comparison",
             statistic=2 - 1, holds=2 > 1, profile=profile)
"""

BAD = """\
# %% tags=["parameters"]
profile = "cpu"
out_dir = "unset"

# %%
x = 1
raise ValueError("planted failure")

# %%
print("never reached")
"""


@pytest.fixture()
def project(tmp_path):
    """A miniature project: two notebooks, a ToC that lists them, a results directory."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "g1_good.py").write_text(GOOD)
    (tmp_path / "notebooks" / "b2_bad.py").write_text(BAD)
    (tmp_path / "book").mkdir()
    toc = {
        "format": "jb-book",
        "root": "intro",
        "parts": [
            {"caption": "Results", "chapters": [{"file": "results/g1_good"}]},
            {
                "caption": "More",
                "chapters": [{"file": "more", "sections": [{"file": "results/b2_bad"}]}],
            },
        ],
    }
    (tmp_path / "book" / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    return tmp_path


def _workflow(project, **config):
    """Run the book's workflow on the miniature project (no Jupyter Book build); the encoders
    the plan names are stand-in files, since these notebooks load none."""
    from memloc import workflow

    plan = workflow.book_plan(
        "quick", ["g1_good", "b2_bad"], config.get("params"), notebooks_dir=project / "notebooks"
    )
    for entry in plan.encoders:
        (project / "cache" / entry).mkdir(parents=True, exist_ok=True)
        (project / "cache" / entry / "model.safetensors").touch()
    values = {
        "toc": str(project / "book" / "_toc.yml"),
        "notebooks": str(project / "notebooks"),
        "results": str(project / "book" / "results"),
        "cache": str(project / "cache"),
        "build": False,
        **config,
    }
    cmd = workflow.snakemake_command("quick", config=values, cores="1", keep_going=True)
    return subprocess.run(cmd + ["--nolock"], capture_output=True, text=True)


def test_failure_names_notebook_and_cell_and_keeps_others(project):
    run = _workflow(project)
    message = run.stdout + run.stderr
    assert run.returncode != 0
    assert "notebook 'b2_bad' failed in b2_bad.py, cell 2 (line 6)" in message, message[-3000:]
    assert 'raise ValueError("planted failure")' in message
    assert "ValueError: planted failure" in message

    out = project / "book" / "results" / "quick"
    # The notebook that ran is kept, with its outputs and its job's benchmark file.
    assert (out / "g1_good.ipynb").exists()
    seen = json.loads((out / "g1_good" / "seen.json").read_text())
    assert seen == {"profile": "quick", "seed": 0}
    assert book.timings_markdown([book.ResultNotebook("g1_good")], out.parent).count("G1") == 1
    # The failed one has no executed notebook (it runs again next time) and leaves its error.
    assert not (out / "b2_bad.ipynb").exists() and (out / "b2_bad.failed.ipynb").exists()
    assert "planted failure" in (out / "b2_bad.error.txt").read_text()
    mtime = (out / "g1_good.ipynb").stat().st_mtime

    # A changed parameter: executed again, seeing the new value. (`seed` alone would be the
    # profile key, naming another run; `g1_good.seed` is this notebook's own parameter.)
    assert _workflow(project, params={"g1_good.seed": 3}).returncode != 0  # b2_bad still fails
    assert json.loads((out / "g1_good" / "seen.json").read_text())["seed"] == 3
    assert (out / "g1_good.ipynb").stat().st_mtime > mtime
    # Unchanged inputs: kept.
    mtime = (out / "g1_good.ipynb").stat().st_mtime
    _workflow(project, params={"g1_good.seed": 3})
    assert (out / "g1_good.ipynb").stat().st_mtime == mtime

    # The pages: only the executed result in the ToC, its verdict in the claims table.
    toc_path = book.write_pages(
        [book.ResultNotebook("g1_good"), book.ResultNotebook("b2_bad")],
        "quick",
        book_dir=project / "book",
        notebooks_dir=project / "notebooks",
    )
    toc = toc_path.read_text()
    assert "results/g1_good" in toc and "results/b2_bad" not in toc
    assert "file: more" in toc  # the chapter stays when its result section is dropped
    assert (project / "book" / "results" / "g1_good.ipynb").exists()
    with (project / "book" / "results" / "claims.csv").open() as fh:
        claims = {row["result"]: row for row in csv.DictReader(fh)}
    assert claims["G1"]["verdict"] == "supported" and claims["G1"]["profile"] == "quick"
    assert claims["B2"]["verdict"] == "not run at this profile"
    table = (project / "book" / "results" / "claims_table.md").read_text()
    assert "{doc}`G1 </results/g1_good>`" in table and "two is more than one" in table


def test_notebook_without_parameters_cell_is_refused(tmp_path):
    (tmp_path / "p1_noparams.py").write_text("# %%\nprofile = 'cpu'\n")
    with pytest.raises(ValueError, match='tags=\\["parameters"\\]'):
        book.notebook_parameters("p1_noparams", tmp_path)


def test_record_claim_computes_the_verdict(tmp_path):
    kw = dict(result="T1", claim="c", test="t", statistic=0.5, profile="quick")
    assert book.record_claim(tmp_path, p_value=0.01, **kw)["verdict"] == "supported"
    assert book.record_claim(tmp_path, p_value=0.2, **kw)["verdict"] == "not supported"
    assert (
        book.record_claim(tmp_path, p_value=0.01, holds=False, **kw)["verdict"] == "not supported"
    )
    assert book.record_claim(tmp_path, holds=True, **kw)["verdict"] == "supported"
    book.record_claim(tmp_path, p_value=0.04, alpha=0.01, **{**kw, "claim": "d"})
    entries = json.loads((tmp_path / "verdict.json").read_text())
    # Re-recording claim "c" replaced it; "d" is a second claim of the same result.
    assert [(e["claim"], e["verdict"]) for e in entries] == [
        ("c", "supported"),
        ("d", "not supported"),
    ]
    with pytest.raises(ValueError, match="p_value"):
        book.record_claim(tmp_path, **kw)
    # No claim in the paper, or nothing to compare: neither supported nor not.
    assert book.record_claim(tmp_path, p_value=0.001, context=True, **kw)["verdict"] == "context"
    why = "Not testable here: f did not memorize its candidates."
    untestable = book.record_claim(tmp_path, testable=False, reason=why, **kw)
    assert untestable["verdict"] == "not testable here" and untestable["p_value"] is None
    assert untestable["reason"] == why
    # a significant test on encoders that did not memorize is still not testable, not support
    computed = book.record_claim(tmp_path, p_value=0.001, testable=False, reason=why, **kw)
    assert computed["verdict"] == "not testable here" and computed["p_value"] == 0.001
    assert book.record_claim(tmp_path, p_value=0.001, reason=why, **kw)["reason"] == ""
    with pytest.raises(ValueError, match="needs the reason"):
        book.record_claim(tmp_path, testable=False, **kw)
    table = book.claims_markdown([{**untestable, "notebook": "t1_layermem"}], "quick")
    assert "*not testable here*: f did not memorize its candidates. |" in table


def test_the_toc_is_the_registry():
    notebooks = book.result_notebooks()
    names = [nb.name for nb in notebooks]
    # The regime page comes first: every result after it relies on its checks.
    assert names[:2] == ["r0_regime", "t1_layermem"] and len(names) == len(set(names))
    ids = {nb.result_id for nb in notebooks}
    assert {
        "R0",
        "T1",
        "T3",
        "A6",
        "F1",
        "F2",
        "F3b",
        "A1",
        "A2",
        "A3",
        "T5",
        "T6",
        "A7",
        "A8",
    } <= ids


def test_pages_toc_drops_missing_results_and_empty_parts(tmp_path):
    """write_pages' ToC is the book's ToC without the results that were not executed: a
    chapter stays without its dropped sections, a part left with no entry goes."""
    import nbformat

    t3 = {"file": "results/t3_layer_consistency"}  # not executed
    toc = {
        "format": "jb-book",
        "root": "intro",
        "parts": [
            {"caption": "Layers", "chapters": [{"file": "results/t1_layermem"}]},
            {"caption": "Only results", "chapters": [t3]},
            {"caption": "Units", "chapters": [{"file": "units", "sections": [dict(t3)]}]},
        ],
    }
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    executed = tmp_path / "book" / "results" / "quick" / "t1_layermem.ipynb"
    executed.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), executed)
    notebooks = [book.ResultNotebook("t1_layermem"), book.ResultNotebook("t3_layer_consistency")]
    written = book.write_pages(notebooks, "quick", book_dir=tmp_path / "book")
    assert [nb.name for nb in book.result_notebooks(written)] == ["t1_layermem"]
    assert yaml.safe_load(written.read_text()) == {
        "format": "jb-book",
        "root": "intro",
        "parts": [
            {"caption": "Layers", "chapters": [{"file": "results/t1_layermem"}]},
            {"caption": "Units", "chapters": [{"file": "units"}]},
        ],
    }


def test_paper_numbers_match_the_poster():
    df = book.paper_numbers()
    assert list(df.columns) == ["result", "row", "column", "value", "std", "source"]
    assert df.groupby("result").size().to_dict() == {"T1": 48, "T5": 7, "T6": 30}
    t1 = book.paper_numbers("T1").set_index(["row", "column"])["value"]
    assert t1[("Res6", "layermem")] == 0.311 and t1[("1", "least_layermem")] == 0.003
    assert ("1", "delta_layermem") not in t1.index  # the poster leaves it empty
    t6 = book.paper_numbers("T6").set_index(["row", "column"])
    assert t6.loc[("random per layer 10%", "accuracy_svhn"), "std"] == 2.44
    with pytest.raises(KeyError, match="T1"):
        book.paper_numbers("T9")


def test_generated_tables_read_profiles_and_timings(tmp_path):
    md = book.profiles_markdown()
    assert "`quick`" in md and "`cpu`" in md and "| epochs |" in md
    assert "No job" in book.timings_markdown(book.result_notebooks(), tmp_path)
    plan = {"notebooks": ["t1_layermem"], "encoders": {"resnet9-simclr-x-f-1": "shared (f)"}}
    (tmp_path / "quick" / "benchmarks").mkdir(parents=True)
    (tmp_path / "quick" / "plan.json").write_text(json.dumps(plan))
    header = "s\th:m:s\tmax_rss\n"
    benchmark = tmp_path / "quick" / "benchmarks" / "t1_layermem.tsv"
    benchmark.write_text(header + "90.0\t0:01:30\t1\n")
    md = book.timings_markdown(book.result_notebooks(), tmp_path)
    assert "| T1 `t1_layermem` | 1.5 |" in md and "| **sum of the jobs** | **1.5** |" in md
    train = tmp_path / book.TRAIN_DIR / "benchmarks"
    train.mkdir(parents=True)
    (train / "resnet9-simclr-x-f-1.tsv").write_text(header + "600.0\t0:10:00\t1\n")
    md = book.timings_markdown(book.result_notebooks(), tmp_path)
    assert "| training shared (f) | 10.0 |" in md and "| **sum of the jobs** | **11.5** |" in md
    assert "†" not in md
    # An encoder no train job trained (found in the cache): the time its training log records.
    plan["encoders"]["resnet9-simclr-x-g-2"] = "shared (g)"
    (tmp_path / "quick" / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "cache" / "resnet9-simclr-x-g-2").mkdir(parents=True)
    (tmp_path / "cache" / "resnet9-simclr-x-g-2" / "log.json").write_text('{"wall_s": 300.0}')
    md = book.timings_markdown(book.result_notebooks(), tmp_path, cache_dir=tmp_path / "cache")
    assert "| training shared (g) | 5.0 † |" in md and "| **sum of the jobs** | **16.5** |" in md
    assert "† Trained before this workflow's train jobs" in md
    assert "api" not in book.api_modules() and "memloc.book" in book.api_modules()


def test_figures_write_png_and_svg(tmp_path):
    from memloc import figures

    layers = ["1", "2", "Res2", "3"]
    table = pd.DataFrame(
        {
            "layer": layers,
            "layermem": [0.1, 0.2, 0.2, 0.3],
            "delta_layermem": [np.nan, 0.1, 0.0, 0.1],
            "top_layermem": [0.2, 0.4, 0.4, 0.6],
            "least_layermem": [0.0, 0.01, 0.02, 0.03],
            "contrast": [0.0, 0.01, 0.01, 0.05],
            "contrast_t": [0.1, 1.0, 1.2, 4.0],
        }
    )
    paper = book.paper_numbers("T1")
    fig = figures.layermem_plot(table, paper=paper)
    assert len(fig.axes) == 4  # paper, ours, ΔLayerMem, contrast
    paths = figures.save_figure(fig, tmp_path / "out", "layermem")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["svg"].read_text().lstrip().startswith("<?xml")

    rng = np.random.default_rng(0)
    units = pd.DataFrame(
        {
            "layer": np.repeat(layers, 20).tolist() * 2,
            "unitmem": rng.uniform(size=160),
            "classmem": rng.uniform(size=160),
            "model": ["SSL"] * 80 + ["SL"] * 80,
            "defined": [True] * 159 + [False],
        }
    )
    figures.save_figure(figures.unitmem_distributions(units), tmp_path, "f1")
    figures.save_figure(figures.scatter_classmem_unitmem(units, ncols=3), tmp_path, "f2")
    images = rng.integers(0, 255, size=(7, 1, 8, 8), dtype=np.uint8)
    fig = figures.image_gallery(images, [f"#{i}" for i in range(7)], ncols=4)
    assert len([ax for ax in fig.axes if ax.images]) == 7
    with pytest.raises(ValueError, match="titles"):
        figures.image_gallery(images, ["a"])
    with pytest.raises(ValueError, match="bare file stem"):
        figures.save_figure(fig, tmp_path, "x.png")


@pytest.mark.slow
def test_quick_book_builds_with_claims_page():
    """`python -m memloc.book --profile quick` executes every notebook and builds the HTML."""
    root = repo_root()
    result = subprocess.run(
        [sys.executable, "-m", "memloc.book", "--profile", "quick"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = root / "book" / "_build" / "html"
    assert (html / "index.html").exists() and (html / "claims.html").exists()
    notebooks = [
        nb for nb in book.result_notebooks() if (root / "notebooks" / f"{nb.name}.py").exists()
    ]
    assert notebooks, "no result notebook in notebooks/ yet"
    for nb in notebooks:
        assert (html / "results" / f"{nb.name}.html").exists(), nb.name
    with (root / "book" / "results" / "claims.csv").open() as fh:
        verdicts = {row["notebook"]: row["verdict"] for row in csv.DictReader(fh)}
    for nb in notebooks:
        # A verdict computed by the notebook, not a status the build filled in.
        computed = ("supported", "not supported", "context", "not testable here")
        assert verdicts.get(nb.name) in computed, (nb.name, verdicts)
    claims = (html / "claims.html").read_text()
    assert "Profile of this build" in claims and "quick" in claims


def test_code_digest_ignores_docstrings_comments_and_layout(tmp_path):
    from memloc.utils import code_digest

    def digest(text):
        path = tmp_path / "m.py"
        path.write_text(text)
        return code_digest(path)

    base = digest('"""Module."""\n\ndef f(x):\n    """Double."""\n    return 2 * x\n')
    same = digest('"""Other words."""\n# a comment\ndef f(x):  # why\n\n    return 2*x\n')
    assert base == same
    assert digest('def f(x):\n    """Double."""\n    return 3 * x\n') != base
    # A function whose body is only a docstring still differs from one that returns.
    assert digest('def f(x):\n    """Double."""\n') != base


def test_a_reader_page_hides_code_and_lists_the_parameters(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# T9: a result"),
        nbformat.v4.new_code_cell("profile = 'cpu'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("profile = 'quick'", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("y = 2", metadata={"tags": ["remove-input"]}),
    ]
    nb.metadata["papermill"] = {"parameters": {"profile": "quick", "ks": [1, 2]}}
    nbformat.write(nb, str(tmp_path / "t9.ipynb"))
    page = nbformat.read(str(book.reader_page(tmp_path / "t9.ipynb", tmp_path / "page.ipynb")), 4)
    tags = [c.metadata.get("tags") for c in page.cells]
    assert tags[1:5] == [
        ["parameters", "remove-cell"],
        ["injected-parameters", "remove-cell"],
        ["hide-input"],
        ["remove-input"],
    ]
    # The executed sources and outputs are those of the notebook; one closed box is added.
    assert [c.source for c in page.cells[:5]] == [c.source for c in nb.cells]
    box = page.cells[-1]
    assert box.cell_type == "markdown" and ":class: dropdown" in box.source
    assert "| `ks` | `[1, 2]` |" in box.source and '| `profile` | `"quick"` |' in box.source
