"""The report's conclusion, written from the measured numbers.

Runs are grouped by network. For a network whose gradients vanish at initialisation the
conclusion says which optimizers overcame it (reached the target accuracy), which learned
something (clearly above chance) and which did not, and shows the mechanism: how large the
updates to layer 1 were, relative to its weights, compared with the output layer's. Across
networks it compares the remedies: each network's best run against the best run on the
network with vanishing gradients.

Runs of different tasks (the torch lab's: a CNN on digits, an MLP on MNIST-1D, recurrent
networks on the adding problem) are never compared with each other: each task gets its own
paragraphs, named after it.

Every sentence is built from numbers in the store; nothing is assumed about which optimizer or
remedy ought to win.
"""

from __future__ import annotations

import math

from .results import Results, Run

# clearly above chance: at least this many accuracy points more than always guessing one class
ABOVE_CHANCE = 0.05


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _target(run: Run) -> float:
    return run.target_accuracy if run.target_accuracy is not None else 0.9


def _by_network(runs: list[Run]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.network, []).append(run)
    return groups


def _score(run: Run) -> float:
    return run.test_accuracy if math.isfinite(run.test_accuracy) else -math.inf


def _relative_first_update(run: Run) -> float:
    """Layer 1's median update-to-weight ratio over the output layer's."""
    profile = run.update_ratio_profile()
    if profile.size < 2 or not (profile[-1] > 0) or not math.isfinite(profile[0]):
        return math.nan
    return float(profile[0] / profile[-1])


def _optimizers_on(network: str, runs: list[Run], explain: bool) -> list[str]:
    """Which optimizers overcame the vanishing gradients of ``network``, and the mechanism."""
    chance, target = runs[0].chance, _target(runs[0])
    ranked = sorted(runs, key=_score, reverse=True)
    reached = [r for r in ranked if r.test_accuracy >= target]
    learned = [r for r in ranked
               if r not in reached and r.test_accuracy >= chance + ABOVE_CHANCE]
    diverged = [r for r in ranked if r.status == "diverged"]
    stuck = [r for r in ranked if r not in reached and r not in learned and r not in diverged]

    def named(rs: list[Run]) -> str:
        return _join([f"{r.optimizer} ({_pct(r.test_accuracy)})" for r in rs])

    parts = []
    if reached:
        parts.append(f"{named(reached)} overcame the vanishing gradients and reached the target "
                     f"{_pct(target)} test accuracy")
    if learned:
        verb = "learned something" if not reached else "learned less"
        parts.append(f"{named(learned)} {verb} but stayed below the target {_pct(target)}")
    if stuck:
        parts.append(f"{named(stuck)} stayed at chance ({_pct(chance)})")
    if diverged:
        parts.append(f"{_join([r.optimizer for r in diverged])} diverged")
    text = [f"Trained on the {network} network, " + "; ".join(parts) + "."]

    ratios = [(r, _relative_first_update(r)) for r in ranked if r.status != "diverged"]
    ratios = [(r, q) for r, q in ratios if math.isfinite(q) and q > 0]
    if len(ratios) >= 2:
        ratios.sort(key=lambda rq: rq[1], reverse=True)
        last = len(runs[0].initial_grad_norms())
        text.append(
            f"The mechanism shows in the update-to-weight ratios: layer 1's (the median over "
            f"the epochs) divided by layer {last}'s was "
            f"{_join([f'{q:.2g} with {r.optimizer}' for r, q in ratios])}."
            + (" An optimizer that divides each parameter's step by its own gradient history "
               "gives the first layer steps of about the same relative size as the last; a "
               "plain gradient step shrinks with the gradient." if explain else ""))
    return text


def conclude(results: Results) -> list[str]:
    """Paragraphs of plain text (the template escapes them)."""
    runs = list(results.runs)
    if not runs:
        return ["The store holds no finished runs yet."]
    tasks: dict[str, list[Run]] = {}
    for run in runs:
        tasks.setdefault(run.task, []).append(run)
    if len(tasks) == 1:
        return _conclude(runs)
    # different data and losses: each task's runs are judged among themselves
    return [f"{task or 'NumPy lab'}: {paragraph}" for task, task_runs in tasks.items()
            for paragraph in _conclude(task_runs)]


def _conclude(runs: list[Run]) -> list[str]:
    """The conclusion on runs of one task."""
    if all(not math.isfinite(r.test_accuracy) for r in runs):
        ranked = sorted(runs, key=lambda r: r.test_loss if math.isfinite(r.test_loss)
                        else math.inf)
        best = ranked[0]
        return [f"Lowest test loss: {best.label}, {best.test_loss:.4g}."]

    paragraphs = []
    groups = _by_network(runs)
    vanishing = {name: rs for name, rs in groups.items()
                 if rs[0].finding == "vanishing" and len(rs) > 1}
    for network, rs in groups.items():
        if rs[0].finding in ("vanishing", "exploding"):
            paragraphs.append(f"At initialisation, in the {network} network: "
                              f"{rs[0].message}.")
    for number, (network, rs) in enumerate(vanishing.items()):
        paragraphs.extend(_optimizers_on(network, rs, explain=number == 0))

    # the reference is the network most optimizers were tried on (the first such); the
    # others are the remedies it is compared with
    reference = max(groups, key=lambda n: len(groups[n]))
    best = {network: max(rs, key=_score) for network, rs in groups.items()}
    if len(groups) > 1:
        base = best[reference]
        others = sorted((best[n] for n in groups if n != reference), key=_score, reverse=True)
        listing = "; ".join(f"{r.network}: {_pct(r.test_accuracy)} with {r.optimizer}"
                            + (f", the target in {r.epochs_to_target} epochs"
                               if r.epochs_to_target else "")
                            for r in others)
        better = [r for r in others if r.test_accuracy > base.test_accuracy]
        lead = ("Changing the network did more than changing the optimizer" if better
                else "No change to the network beat the best optimizer")
        paragraphs.append(
            f"{lead}: the best run on the {reference} network reached "
            f"{_pct(base.test_accuracy)} ({base.optimizer}); the best run of each other "
            f"network: {listing}.")
        for network, rs in groups.items():
            if network == reference or network in vanishing or len(rs) < 2:
                continue  # a vanishing network's optimizers have their paragraph above
            chance = rs[0].chance
            failed = [r for r in rs if r.test_accuracy < chance + ABOVE_CHANCE]
            if failed and len(failed) < len(rs):
                worked = [r for r in rs if r not in failed]
                paragraphs.append(
                    f"The {network} network depends on its optimizer: "
                    f"{_join([f'{r.optimizer} reached {_pct(r.test_accuracy)}' for r in worked])}"  # noqa: E501
                    f", {_join([r.optimizer for r in failed])} stayed at chance.")

    top = max(runs, key=_score)
    when = (f", reaching the target in {top.epochs_to_target} epochs"
            if top.epochs_to_target else "")
    paragraphs.append(f"Best run overall: {top.label}, {_pct(top.test_accuracy)} test "
                      f"accuracy{when} ({top.wall_s:.1f} s).")
    return paragraphs
