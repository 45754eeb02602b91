"""`mlcourse report`: one self-contained HTML file about a team's progress, from the store.

Everything is computed from the append-only progress store (see :mod:`mlcourse.progress`):
the latest attempt at each task counts as the learner's current state; the history gives the
weekly trend and the "needs attention" list. Figures are PNGs embedded in the page, so the file
opens offline and can be mailed around.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import progress

COMPLETE_AT = 0.8           # a module counts as completed at 80% of its autograded points
HEATMAP_MAX_LEARNERS = 60   # above this, per-learner heatmaps give way to teams and tables
STALE_DAYS = 14
FAILED_ATTEMPTS = 3
BROKEN = ("missing", "malformed", "tampered", "crashed", "timeout")


@dataclass
class ProgressData:
    """The attempts, the roster (if any) and what the report derives from them."""

    attempts: pd.DataFrame
    roster: pd.DataFrame            # columns id, team (learners with no attempt included)
    as_of: dt.datetime
    latest: pd.DataFrame = field(init=False)

    def __post_init__(self):
        tasks = self.attempts[self.attempts["kind"] != "notebook"]
        self.latest = (tasks.sort_values(["attempted_at", "id"])
                       .groupby(["learner", "assignment", "task"], as_index=False).last())


def load(course: Path | None = None, progress_url: str | None = None,
         as_of: dt.datetime | None = None) -> ProgressData:
    """Attempts from ``--course DIR`` (its progress.db and roster.csv) or ``--progress DB``."""
    if course is not None:
        course = Path(course)
        store = progress.open_store(progress.default_url(course) if progress_url is None
                                    else progress_url)
        roster_file = course / "roster.csv"
    else:
        store = progress.open_store(progress_url)
        roster_file = None
    attempts = store.frame()
    store.dispose()
    if roster_file is not None and roster_file.is_file():
        roster = pd.read_csv(roster_file, dtype=str)[["id", "team"]].fillna("")
    else:
        roster = (attempts.sort_values("attempted_at").groupby("learner", as_index=False)
                  .last()[["learner", "team"]].rename(columns={"learner": "id"}))
    known = set(roster["id"])
    extra = attempts.loc[~attempts["learner"].isin(known), ["learner", "team"]]
    if len(extra):
        extra = extra.drop_duplicates("learner").rename(columns={"learner": "id"})
        roster = pd.concat([roster, extra], ignore_index=True)
    as_of = as_of or progress.utcnow()
    return ProgressData(attempts, roster.sort_values("id").reset_index(drop=True), as_of)


# ------------------------------------------------------------------ the numbers

def module_points(data: ProgressData) -> pd.DataFrame:
    """Per learner and module: points (auto + manual, as recorded), autograded share, status."""
    latest = data.latest
    auto = latest[latest["kind"] == "autograded"]
    per = latest.groupby(["learner", "assignment"]).agg(score=("score", "sum"),
                                                        max_score=("max_score", "sum"))
    auto_per = auto.groupby(["learner", "assignment"]).agg(auto=("score", "sum"),
                                                           auto_max=("max_score", "sum"))
    frame = per.join(auto_per, how="outer").reset_index()
    frame["progress"] = frame["auto"] / frame["auto_max"].replace(0, np.nan)
    statuses = (data.attempts.sort_values(["attempted_at", "id"])
                .groupby(["learner", "assignment"], as_index=False).last()
                [["learner", "assignment", "submission_status", "kind", "status"]])
    statuses["submission"] = np.where(statuses["submission_status"] != "",
                                      statuses["submission_status"], statuses["status"])
    frame = frame.merge(statuses[["learner", "assignment", "submission"]],
                        on=["learner", "assignment"], how="outer")
    frame[["score", "auto"]] = frame[["score", "auto"]].fillna(0.0)
    return frame


def progress_matrix(data: ProgressData, points: pd.DataFrame) -> pd.DataFrame:
    """learner x module share of autograded points (NaN: never attempted)."""
    matrix = points.pivot_table(index="learner", columns="assignment", values="progress",
                                aggfunc="first")
    modules = sorted(data.attempts["assignment"].unique())
    return matrix.reindex(index=data.roster["id"], columns=modules)


def completion_by_module(data: ProgressData, matrix: pd.DataFrame) -> pd.DataFrame:
    """Per module (and team): share of learners who completed it."""
    done = (matrix >= COMPLETE_AT).astype(float)
    done["team"] = data.roster.set_index("id")["team"].reindex(done.index).to_numpy()
    by_team = done.groupby("team").mean().T
    by_team["all learners"] = (matrix >= COMPLETE_AT).mean()
    return by_team


def skills(data: ProgressData) -> pd.DataFrame:
    """learner x skill share of autograded points."""
    auto = data.latest[data.latest["kind"] == "autograded"]
    table = auto.groupby(["learner", "skill"])[["score", "max_score"]].sum()
    share = (table["score"] / table["max_score"].replace(0, np.nan)).unstack("skill")
    return share.reindex(index=data.roster["id"])


def task_scores(data: ProgressData) -> pd.DataFrame:
    """Latest score share of every autograded task, one row per learner and task."""
    auto = data.latest[data.latest["kind"] == "autograded"].copy()
    auto["share"] = auto["score"] / auto["max_score"].replace(0, np.nan)
    auto["label"] = auto["assignment"] + " / " + auto["task"]
    return auto


def weekly_trend(data: ProgressData) -> pd.DataFrame:
    """Per week: the team's mean share of autograded points over every module seen so far."""
    tasks = data.attempts[data.attempts["kind"] == "autograded"].sort_values(
        ["attempted_at", "id"])
    if tasks.empty:
        return pd.DataFrame(columns=["week", "mean progress", "active learners"])
    weeks = pd.period_range(tasks["attempted_at"].min(), data.as_of, freq="W")
    rows = []
    learners = max(len(data.roster), 1)
    total_max = tasks.groupby(["assignment", "task"])["max_score"].max().sum()
    for week in weeks:
        end = week.end_time
        seen = tasks[tasks["attempted_at"] <= end]
        latest = seen.groupby(["learner", "assignment", "task"])["score"].last()
        active = tasks[(tasks["attempted_at"] > week.start_time) &
                       (tasks["attempted_at"] <= end)]["learner"].nunique()
        rows.append({"week": week.start_time.date(),
                     "mean progress": latest.sum() / (learners * total_max),
                     "active learners": active})
    return pd.DataFrame(rows)


def needs_attention(data: ProgressData, stale_days: int = STALE_DAYS,
                    failed_attempts: int = FAILED_ATTEMPTS) -> pd.DataFrame:
    """Learners to look at, with the reason for each."""
    reasons: list[dict] = []
    last_seen = data.attempts.groupby("learner")["attempted_at"].max()
    for learner in data.roster["id"]:
        seen = last_seen.get(learner)
        if seen is None or pd.isna(seen):
            reasons.append({"learner": learner, "reason": "no attempt at all yet"})
        elif (data.as_of - seen).days >= stale_days:
            reasons.append({"learner": learner,
                            "reason": f"no progress for {(data.as_of - seen).days} days "
                                      f"(last attempt {seen:%Y-%m-%d})"})
    tasks = data.attempts[data.attempts["kind"] == "autograded"]
    history = tasks.groupby(["learner", "assignment", "task"])["status"].agg(list)
    for (learner, assignment, task), statuses in history.items():
        if "passed" not in statuses and len(statuses) >= failed_attempts:
            reasons.append({"learner": learner,
                            "reason": f"{len(statuses)} failed attempts at {assignment} / "
                                      f"{task}, never passed"})
    latest = (data.attempts.sort_values(["attempted_at", "id"])
              .groupby(["learner", "assignment"], as_index=False).last())
    for row in latest.itertuples():
        status = row.submission_status or row.status
        if status in BROKEN:
            reasons.append({"learner": row.learner,
                            "reason": f"latest submission of {row.assignment} is {status}"})
    frame = pd.DataFrame(reasons, columns=["learner", "reason"])
    teams = data.roster.set_index("id")["team"]
    frame.insert(1, "team", frame["learner"].map(teams).fillna(""))
    return frame.sort_values(["team", "learner"]).reset_index(drop=True)


# ------------------------------------------------------------------ figures

def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _figures(data: ProgressData, matrix, completion, skill_table, tasks, trend) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    figures = {}
    fig, ax = plt.subplots(figsize=(8, 3.5))
    completion.plot.bar(ax=ax, width=0.8)
    ax.set(ylabel="share of learners who completed", xlabel="", ylim=(0, 1))
    ax.legend(title="team", bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    figures["completion"] = _png(fig)

    many = len(matrix) > HEATMAP_MAX_LEARNERS
    shown = matrix
    if many:   # aggregate to teams: a 500-row heatmap informs nobody
        shown = matrix.join(data.roster.set_index("id")["team"]).groupby("team").mean()
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.28 * len(shown) + 1)))
    sns.heatmap(shown, vmin=0, vmax=1, cmap="RdYlGn", annot=len(shown) <= 30, fmt=".0%",
                cbar_kws={"label": "share of autograded points"}, ax=ax,
                mask=shown.isna())
    ax.set(xlabel="", ylabel="team" if many else "learner")
    figures["heatmap"] = _png(fig)

    skill_shown = skill_table
    if len(skill_table) > HEATMAP_MAX_LEARNERS:
        skill_shown = skill_table.join(data.roster.set_index("id")["team"]).groupby(
            "team").mean()
    fig, axes = plt.subplots(1, 2, figsize=(10, max(2.5, 0.28 * len(skill_shown) + 1)),
                             gridspec_kw={"width_ratios": [3, 2]}, layout="constrained")
    sns.heatmap(skill_shown, vmin=0, vmax=1, cmap="RdYlGn", ax=axes[0], mask=skill_shown.isna(),
                annot=len(skill_shown) <= 30, fmt=".0%", cbar=False)
    axes[0].set(xlabel="", ylabel="")
    skill_table.mean().sort_values().plot.barh(ax=axes[1], color="tab:blue")
    axes[1].set(xlim=(0, 1), xlabel="team mean share of points", ylabel="")
    figures["skills"] = _png(fig)

    order = tasks.groupby("label")["share"].mean().sort_values().index
    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(order) + 1)))
    groups = [tasks.loc[tasks["label"] == label, "share"].dropna().to_numpy()
              for label in order]
    ax.boxplot(groups, orientation="horizontal", tick_labels=list(order), widths=0.6,
               flierprops={"markersize": 2})
    ax.axvline(0.4, color="tab:red", linestyle="--")
    ax.set(xlabel="latest score share per learner", ylabel="", xlim=(-0.05, 1.05))
    figures["tasks"] = _png(fig)

    fig, ax = plt.subplots(figsize=(8, 3))
    if len(trend):
        # one slot per week, labelled by its Monday: readable for one week as for fifty
        slots = list(range(len(trend)))
        ax2 = ax.twinx()
        ax2.bar(slots, trend["active learners"], width=0.6, alpha=0.25, color="tab:gray")
        ax2.set_ylabel("active learners")
        ax2.set_ylim(0, max(1, trend["active learners"].max()) * 1.15)
        ax.set_zorder(ax2.get_zorder() + 1)   # the line in front of the bars
        ax.patch.set_visible(False)
        ax.plot(slots, trend["mean progress"], marker="o")
        step = -(-len(slots) // 8)   # at most 8 labels
        ax.set_xticks(slots[::step], [f"{pd.Timestamp(w):%d %b}" for w in trend["week"]][::step])
        ax.set_xlim(-0.6, len(slots) - 0.4)
    ax.set(ylabel="team progress (all modules)", xlabel="week starting", ylim=(0, 1))
    figures["trend"] = _png(fig)
    return figures


# ------------------------------------------------------------------ HTML

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:0} .sub{color:#666;margin-top:.2em}
.numbers{display:flex;gap:1em;flex-wrap:wrap}
.number{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.number b{display:block;font-size:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
td.l,th.l{text-align:left} img{max-width:100%}
.why{color:#555;font-size:.9em;max-width:60em}
details{margin:.5em 0}
"""


def _table(frame: pd.DataFrame, left: tuple[str, ...] = ()) -> str:
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>'
                   for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = "".join(f'<td class="{"l" if c in left else ""}">{html.escape(str(v))}</td>'
                        for c, v in zip(frame.columns, record))
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _points_table(points: pd.DataFrame, data: ProgressData) -> str:
    """Learner x module points with machine-readable cells (the browser test reads them)."""
    modules = sorted(points["assignment"].dropna().unique())
    head = "".join(f"<th>{html.escape(m)}</th>" for m in modules)
    index = points.set_index(["learner", "assignment"])
    rows = []
    for learner, team in data.roster[["id", "team"]].itertuples(index=False):
        cells = []
        for module in modules:
            if (learner, module) in index.index:
                row = index.loc[(learner, module)]
                cells.append(f'<td data-learner="{html.escape(learner)}" '
                             f'data-assignment="{html.escape(module)}" '
                             f'data-score="{row["score"]:g}" '
                             f'data-status="{html.escape(str(row["submission"]))}">'
                             f'{row["score"]:g} <small>{html.escape(str(row["submission"]))}'
                             f'</small></td>')
            else:
                cells.append("<td>-</td>")
        rows.append(f'<tr><td class="l">{html.escape(learner)}</td>'
                    f'<td class="l">{html.escape(team)}</td>{"".join(cells)}</tr>')
    return (f'<table id="points"><tr><th class="l">learner</th><th class="l">team</th>{head}'
            f'</tr>{"".join(rows)}</table>')


def render(data: ProgressData, title: str = "Team progress") -> str:
    points = module_points(data)
    matrix = progress_matrix(data, points)
    completion = completion_by_module(data, matrix)
    skill_table = skills(data)
    tasks = task_scores(data)
    trend = weekly_trend(data)
    attention = needs_attention(data)
    figures = _figures(data, matrix, completion, skill_table, tasks, trend)

    learners = len(data.roster)
    week_ago = data.as_of - dt.timedelta(days=7)
    active = data.attempts.loc[data.attempts["attempted_at"] >= week_ago, "learner"].nunique()
    completed = int((matrix >= COMPLETE_AT).sum().sum())
    hard = (tasks.groupby("label")["share"].agg(["mean", "count"])
            .query("count >= 3 and mean < 0.4").sort_values("mean"))
    numbers = [("learners", learners), ("active in the last 7 days", active),
               ("modules completed", completed), ("need attention",
                                                  attention["learner"].nunique())]
    number_html = "".join(f'<div class="number" data-key="{html.escape(k)}"><b>{v}</b>'
                          f"{html.escape(k)}</div>" for k, v in numbers)
    hard_html = ("<p>No task is failed by most learners.</p>" if hard.empty else
                 "<p>Tasks most learners fail (mean below 40%): look at the teaching before "
                 "the learners.</p>" + _table(hard.reset_index().rename(
                     columns={"label": "task", "mean": "mean share", "count": "learners"})
                     .round(2), left=("task",)))
    attention_html = ("<p>Nobody needs attention.</p>" if attention.empty else
                      _table(attention, left=("learner", "team", "reason")))
    img = lambda key, alt: (f'<img alt="{alt}" src="data:image/png;base64,'  # noqa: E731
                            f'{figures[key]}">')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="sub">As of {data.as_of:%Y-%m-%d %H:%M} UTC, from {len(data.attempts):,} recorded
task attempts. A module counts as completed at {COMPLETE_AT:.0%} of its autograded points;
written answers count once an instructor has graded them.</p>
<div class="numbers">{number_html}</div>

<h2>Needs attention</h2>
<p class="why">No progress for {STALE_DAYS} days or more, {FAILED_ATTEMPTS} or more failed
attempts at one task, or a latest submission that could not be graded as it is (missing,
malformed, tampered, crashed, timed out).</p>
{attention_html}

<h2>Completion by module</h2>
{img("completion", "share of learners who completed each module, by team")}

<h2>Learners and modules</h2>
<p class="why">Share of each module's autograded points, latest attempt per task; grey:
never attempted.{" Teams are shown: there are too many learners for one row each; the full"
" table is below." if learners > HEATMAP_MAX_LEARNERS else ""}</p>
{img("heatmap", "learner by module progress")}

<h2>Skills</h2>
<p class="why">Each task trains one skill of the curriculum (framing, data, modeling,
diagnosis, testing, evaluation, shipping, monitoring...). Left: per learner (or team); right:
the team's mean.</p>
{img("skills", "skills per learner and team")}

<h2>Every task's scores</h2>
<p class="why">One box per task: the spread of learners' latest scores. A task far to the
left for everyone is a teaching problem, not a learner problem.</p>
{hard_html}
{img("tasks", "score distribution of every task")}

<h2>Progress over weeks</h2>
<p class="why">Line: the team's share of all autograded points so far, week by week. Bars:
learners with at least one attempt that week.</p>
{img("trend", "progress over weeks")}

<h2>Points per learner and module</h2>
<details {"open" if learners <= HEATMAP_MAX_LEARNERS else ""}><summary>{learners} learners
(points as recorded at grading, and the submission's status)</summary>
{_points_table(points, data)}
</details>
</body></html>
"""


def build(out: Path, course: Path | None = None, progress_url: str | None = None,
          as_of: dt.datetime | None = None, title: str | None = None) -> Path:
    data = load(course=course, progress_url=progress_url, as_of=as_of)
    if data.attempts.empty:
        raise ValueError("the progress store has no attempts yet: grade something first")
    page = render(data, title or f"Team progress: {data.roster['id'].size} learner(s)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out
