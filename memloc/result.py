"""The API a result notebook uses: one :class:`Result` per page.

A result notebook holds its parameters, the library calls, the figures and the prose that
explains them. The bookkeeping around them is here, written once: where tables and figures
go, the page's header line, the claims with the result's id and the profile filled in and
Holm's adjustment over the page's claims, and the provenance with the wall time.

Example
-------
>>> import tempfile
>>> import pandas as pd
>>> res = Result.start(tempfile.mkdtemp() + "/t9_example", "quick")
>>> res.result_id
'T9'
>>> _ = res.table(pd.DataFrame({"layer": ["1", "2"], "t": [0.51234, 2.5]}), "tests")
>>> entries = res.claims(
...     dict(claim="deeper layers memorize more", test="one-sided t", statistic=2.5, p_value=0.01),
...     dict(claim="residuals add little", test="exact test", statistic=0.4, p_value=0.03),
... )
>>> [(e["verdict"], round(e["p_value"], 2)) for e in entries]  # Holm: 2 x .01, then .03
[('supported', 0.02), ('supported', 0.03)]
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from memloc.book import provenance, record_claim
from memloc.figures import save_figure, save_table
from memloc.profiles import merge_overrides
from memloc.stats import claim, holm  # noqa: F401 (claim: the notebooks' API)


def verdict_markdown(entries: list[dict]) -> str:
    """A Markdown list of recorded verdicts (``memloc.book.record_claim`` return values), for
    a notebook's conclusion: the claim, the verdict, the test, its statistic and p-value."""
    lines = []
    for e in entries:
        p = e.get("p_value")
        p_text = "" if p is None else f", p = {p:.3g}"
        stat = e.get("statistic")
        stat_text = "" if stat is None else f"statistic {stat:.3g}"
        lines.append(
            f"- **{e['verdict']}** — {e['claim']} ({e['test']}; {stat_text}{p_text}"
            + (f", α = {e['alpha']}" if e.get("alpha") is not None else "")
            + ")"
        )
    return "\n".join(lines)


def result_id(out_dir: str | Path) -> str:
    """The paper's label from a notebook's folder: ``.../f2_classmem_vs_unitmem`` -> ``F2``."""
    prefix = Path(out_dir).name.split("_", 1)[0]
    return prefix[:1].upper() + prefix[1:]


@dataclass
class Result:
    """One result page: its folder, profile, claims and start time.

    Attributes
    ----------
    out_dir : the notebook's ``out_dir`` (tables, figures, ``verdict.json``).
    profile, profile_overrides : the notebook's parameters of the same names.
    result_id : the paper's label (``T1``), from the folder's name.
    started : ``time.time()`` at :meth:`start`, for the wall time in :meth:`finish`.
    entries : the claims recorded so far (what :func:`memloc.book.record_claim` returned).
    testable, reason : the page's checks (:meth:`check`): the default of every claim.
    encoders : the encoder hashes of the pairs :meth:`describe` named, for :meth:`finish`.
    """

    out_dir: Path
    profile: str
    profile_overrides: dict = field(default_factory=dict)
    result_id: str = ""
    started: float = 0.0
    entries: list[dict] = field(default_factory=list)
    testable: bool = True
    reason: str = ""
    encoders: dict = field(default_factory=dict)

    @classmethod
    def start(cls, out_dir, profile: str, profile_overrides: dict | None = None) -> Result:
        """Begin a page (the first line of a notebook's first code cell)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        return cls(out, profile, dict(profile_overrides or {}), result_id(out), time.time())

    def overrides(self, **parameters) -> dict:
        """The run's profile keys with the notebook's own (None keeps the profile's value):
        what every ``encoder_pair`` call of the page takes."""
        return merge_overrides(self.profile_overrides, **parameters)

    def describe(self, pair, *facts: str, others: dict | None = None) -> str:
        """The page's header line (Markdown): the profile, data set, architecture and
        framework of ``pair``, then ``facts`` (sentences about the measurement). The
        provenance of :meth:`finish` lists the encoder hashes of ``pair`` and of ``others``
        (a name per pair: the page's other pairs)."""
        for label, other in {pair.framework: pair, **(others or {})}.items():
            self.encoders[label] = other.hashes
        p = pair.profile
        head = (
            f"Profile `{self.profile}`: {p.dataset}, {p.arch} (width {p.width}), {pair.framework}."
        )
        return " ".join([head, *facts])

    def table(
        self, df: pd.DataFrame, name: str | None = None, *, digits: int = 3, index: bool = False
    ):
        """Save ``df`` as ``<out_dir>/<name>.csv`` (unrounded; ``name`` None: shown only) and
        return it for the page, rounded to ``digits`` and without the pandas index unless
        ``index`` (then the CSV has the index as its first columns too)."""
        if name is not None:
            save_table(df.reset_index() if index else df, self.out_dir, name)
        styler = df.style.format(precision=digits, na_rep="–")
        return styler if index else styler.hide(axis="index")

    def figure(self, fig, name: str):
        """Save ``fig`` as ``<out_dir>/<name>.png`` and ``.svg`` and return it for the page."""
        save_figure(fig, self.out_dir, name)
        return fig

    def check(self, checks) -> str:
        """Record whether the page's claims can be tested and return the checks' paragraphs.

        ``checks`` is one :class:`memloc.regime.PairCheck` (did the pair learn and memorize?)
        or a dict naming several (``{"SSL": ..., "SL": ...}``: testable when all pass, the
        reason names those that fail, :func:`memloc.regime.combine_checks`). Every claim of
        :meth:`claims` is then *not testable here* with that reason unless it says otherwise.
        """
        from memloc.regime import combine_checks

        named = checks if isinstance(checks, dict) else {"": checks}
        if len(named) == 1:
            (only,) = named.values()
            self.testable, self.reason = only.testable, only.reason
        else:
            self.testable, self.reason = combine_checks(named)
        return "\n\n".join(c.markdown for c in named.values())

    def claims(
        self,
        *claims: dict,
        testable: bool | None = None,
        reason: str | None = None,
        family: str = "claims",
        adjust: bool = True,
    ) -> list[dict]:
        """Record the page's claims as one family: their p-values Holm-adjusted together
        (claims without a p-value keep None), the test's text saying so, the result id and
        the profile filled in (the note goes where a test's text says ``{holm}``, else at its
        end). Each dict holds :func:`memloc.book.record_claim`'s arguments
        (``claim``, ``test``, ``statistic``, ``p_value``, ``holds``, and ``testable`` and
        ``reason`` where they differ from the page's: by default those of :meth:`check`);
        ``family`` names the tests in the note; ``adjust=False`` records the p-values as given
        (already adjusted by the page). Returns the recorded entries."""
        testable = self.testable if testable is None else testable
        reason = self.reason if reason is None else reason
        with_p = [i for i, c in enumerate(claims) if c.get("p_value") is not None and adjust]
        adjusted = dict(zip(with_p, holm([claims[i]["p_value"] for i in with_p]), strict=True))
        note = f"; Holm over the page's {len(with_p)} {family}" if len(with_p) > 1 else ""
        recorded = []
        for i, c in enumerate(claims):
            args = {"testable": testable, "reason": reason, **c}
            if i in adjusted:
                args["p_value"] = adjusted[i]
            # The Holm note goes where the test's text says {holm}, else at its end.
            here = note if i in adjusted else ""
            text = args["test"]
            args["test"] = text.replace("{holm}", here) if "{holm}" in text else text + here
            entry = record_claim(self.out_dir, result=self.result_id, profile=self.profile, **args)
            recorded.append(entry)
        self.entries += recorded
        return recorded

    def verdicts(self, *notes: str) -> str:
        """The recorded claims as a Markdown list (claim, verdict, test, statistic, p), after
        the reason when :meth:`check` found the claims not testable, then ``notes``
        (paragraphs; empty ones are left out)."""
        head = [] if self.testable else [f"*{self.reason}*"]
        return "\n\n".join([*head, verdict_markdown(self.entries), *filter(None, notes)])

    def finish(self, **extra) -> str:
        """The provenance box (Markdown): git commit, versions, machine, profile, the run's
        profile keys, the encoder hashes of the pairs :meth:`describe` named, ``extra``
        (sizes, settings) and the page's wall time."""
        encoders = {"encoder_hashes": self.encoders} if self.encoders else {}
        info = provenance(
            profile=self.profile,
            profile_overrides=self.profile_overrides,
            **{**encoders, **extra},
            wall_time_s=round(time.time() - self.started, 1),
        )
        return "```json\n" + json.dumps(info, indent=2, default=str) + "\n```"
