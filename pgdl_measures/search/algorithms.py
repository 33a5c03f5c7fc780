"""The four search algorithms as *step planners* over one Optuna study.

The driver asks an algorithm for the next *step* (trials to train at once, each with its
epochs), trains them, and tells the values back. Each algorithm creates its trials in the
study (``study.ask``), so trials, parameters and values live in Optuna; every trial carries the
user attributes ``round``, ``epochs`` and, for BOHB, ``bracket``, ``rung`` and ``config``.

* ``random``: Optuna's ``RandomSampler``; rounds of ``round_size`` configurations.
* ``cmaes``: Optuna's ``CmaEsSampler`` with ``popsize = round_size``, ``x0`` the spec's start
  point, asked in rounds of exactly ``popsize``. Its search space is pinned
  (:class:`PinnedCmaEs`), and ``n_startup_trials=0``: with nothing completed, the stock sampler
  infers an empty space and samples the first round independently (at random); pinned, round 1
  is CMA generation 0 sampled around ``x0`` and every round is a real generation (the trial's
  ``cma:generation`` system attribute). Trials asked beyond the population in a generation
  would be discarded by the sampler, so a round never has more than ``popsize``.
* ``pso``: nevergrad's ``ConfPSO(popsize=round_size)`` through ask/tell; the configurations it
  asks are put in the study with ``enqueue_trial``. Its state (the optimizer and the round's
  asked candidates) is pickled to ``state/<cell>/pso.pkl`` after every ask and tell, so a search
  resumes.
* ``bohb``: synchronous Hyperband brackets as BOHB (Falkner et al. 2018; hpbandster's
  schedule) runs them, budgets ``min_epochs * eta**i`` up to ``epochs``. With ``s_max + 1``
  budgets, bracket ``s`` starts ``floor((s_max + 1) / (s + 1)) * eta**s`` configurations at
  budget index ``s_max - s`` and keeps the best ``1/eta`` at each higher budget; for 40/80/160
  and eta 2 a round is brackets [4, 2, 1], [2, 1] and [3] (9 new configurations, 8 x 160
  GPU x epochs). A promoted configuration is trained again from scratch at the higher budget
  (a new trial with ``promoted_from``). The round's brackets run side by side: step 1 is every
  bracket's first rung, step 2 the promotions, and so on. New configurations are proposed by
  Optuna's ``TPESampler`` fitted (on an in-memory copy) to the completed trials of the largest
  budget that has at least ``d + 2`` of them (``d`` parameters), as BOHB does, and at random
  for a third of them (BOHB's ``random_fraction``) or when no budget has enough.

Resuming: a restarted driver asks exactly what the uninterrupted run would have. The
samplers' random states after each step are kept in the step's plan (:meth:`Algorithm.sampler_state`)
and restored before the next step is asked; trials left by a crash while asking (*orphans*) are
failed and marked ``orphan``, and CMA-ES, whose per-trial seed adds the trial number, counts
trial numbers without them (:class:`PinnedCmaEs`); PSO keeps its own state; BOHB's proposals are
a function of the seed, the bracket and the completed trials.

Budget: the driver passes the GPU x epochs left; a step never plans more than that. Rounds of
``random``, ``cmaes`` and ``pso`` cost ``round_size x epochs`` (a last partial round takes what
is left); a BOHB round reserves its brackets' full cost when it starts (brackets that do not fit
are left out).
"""

from __future__ import annotations

import base64
import copy
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.search.spec import Cell, SearchSpec


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distributions(spec: SearchSpec) -> dict[str, Any]:
    """The Optuna distributions of the spec's space."""
    from optuna.distributions import FloatDistribution, IntDistribution

    out = {}
    for p in spec.params:
        if p.integer:
            out[p.name] = IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            out[p.name] = FloatDistribution(p.low, p.high, log=p.log)
    return out


def full_params(spec: SearchSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The searched parameters with the spec's start point for those not searched."""
    out = {k: v for k, v in spec.raw["start"].items()}
    out.update(params)
    return out


def _random_states(sampler, prefix: str = "") -> dict[str, np.random.RandomState]:
    """The random states a sampler (and the samplers it holds) draws from, by attribute path."""
    from optuna.samplers import BaseSampler
    from optuna.samplers._lazy_random_state import LazyRandomState

    out = {}
    for name, value in sorted(vars(sampler).items()):
        if isinstance(value, LazyRandomState):
            out[prefix + name] = value.rng
        elif isinstance(value, BaseSampler):
            out.update(_random_states(value, f"{prefix}{name}."))
    return out


def orphan_count(study, before: int) -> int:
    """Trials numbered below `before` that a crash while asking left behind (failed, marked ``orphan``)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.number < before and t.user_attrs.get("orphan"))


class Algorithm:
    """A step planner (see the module docstring)."""

    def __init__(self, spec: SearchSpec, cell: Cell, study, state_dir: Path):
        self.spec, self.cell, self.study, self.state_dir = spec, cell, study, Path(state_dir)
        self.dists = distributions(spec)

    def ask_step(self, step: int, remaining: int) -> list[dict[str, Any]] | None:
        """The trials of step `step` (created in the study) as ``{"number", "params",
        "epochs"}``; None when the search is over (budget spent)."""
        raise NotImplementedError

    def tell(self, number: int, value: float) -> None:
        """Tells the algorithm's own state (the study itself is told by the driver)."""

    def sampler_state(self) -> dict[str, Any]:
        """The study's sampler's random states (JSON): kept in each step's plan."""
        out = {}
        for name, rng in _random_states(self.study.sampler).items():
            kind, key, pos, has_gauss, cached = rng.get_state()
            out[name] = [kind, base64.b64encode(np.asarray(key, dtype="<u4").tobytes()).decode(), int(pos),
                         int(has_gauss), float(cached)]
        return out

    def restore_sampler(self, state: dict[str, Any]) -> None:
        """Sets the sampler's random states to `state` (:meth:`sampler_state` after the last step)."""
        rngs = _random_states(self.study.sampler)
        for name, (kind, key, pos, has_gauss, cached) in state.items():
            if name in rngs:
                rngs[name].set_state((kind, np.frombuffer(base64.b64decode(key), dtype="<u4").astype(np.uint32),
                                      int(pos), int(has_gauss), float(cached)))

    def configurations(self) -> int:
        """The configurations proposed so far (BOHB: not counting promotions)."""
        return sum(1 for t in self.study.get_trials(deepcopy=False) if t.user_attrs.get("rung", 0) == 0)

    def _new_trial(self, step_round: int, params: dict[str, Any] | None = None, **attrs) -> dict[str, Any]:
        if params is not None:
            self.study.enqueue_trial(params, user_attrs={"round": step_round, **attrs}, skip_if_exists=False)
        trial = self.study.ask(self.dists)
        if params is None:
            for key, value in {"round": step_round, **attrs}.items():
                trial.set_user_attr(key, value)
        epochs = int(attrs.get("epochs", self.spec.raw["epochs"]))
        if "epochs" not in attrs:
            trial.set_user_attr("epochs", epochs)
        return {"number": trial.number, "params": dict(trial.params), "epochs": epochs}


class RoundAlgorithm(Algorithm):
    """Rounds of ``round_size`` configurations of the full schedule."""

    def round_count(self, remaining: int) -> int:
        return min(int(self.spec.raw["round_size"]), remaining // int(self.spec.raw["epochs"]))

    def ask_step(self, step: int, remaining: int) -> list[dict[str, Any]] | None:
        n = self.round_count(remaining)
        if n <= 0:
            return None
        return [self._new_trial(step) for _ in range(n)]


class RandomSearch(RoundAlgorithm):
    @staticmethod
    def sampler(spec: SearchSpec, cell: Cell):
        return _optuna().samplers.RandomSampler(seed=int(spec.raw["seed"]))


def pinned_cmaes_class():
    optuna = _optuna()

    class PinnedCmaEs(optuna.samplers.CmaEsSampler):
        """``CmaEsSampler`` whose relative search space is the spec's, from the first trial on."""

        def __init__(self, space: dict[str, Any], **kwargs):
            super().__init__(**kwargs)
            self._pinned = dict(space)

        def infer_relative_search_space(self, study, trial):
            return dict(self._pinned)

        def sample_relative(self, study, trial, search_space):
            # the stock sampler seeds each trial with a draw plus the trial's number: count numbers
            # without the orphans of a crash, so a resumed search samples what an uninterrupted one did
            orphans = orphan_count(study, trial.number)
            if orphans:
                trial = copy.copy(trial)
                trial.number -= orphans
            return super().sample_relative(study, trial, search_space)

    return PinnedCmaEs


class CmaEs(RoundAlgorithm):
    @staticmethod
    def sampler(spec: SearchSpec, cell: Cell):
        import warnings

        start = {p.name: spec.raw["start"][p.name] for p in spec.params}
        with warnings.catch_warnings():  # x0 is deprecated since Optuna 4.9 (removal planned in 6.0)
            warnings.simplefilter("ignore", FutureWarning)
            return pinned_cmaes_class()(distributions(spec), x0=start, popsize=int(spec.raw["round_size"]),
                                        n_startup_trials=0, seed=int(spec.raw["seed"]),
                                        warn_independent_sampling=False)

    def ask_step(self, step: int, remaining: int) -> list[dict[str, Any]] | None:
        planned = super().ask_step(step, remaining)
        for entry in planned or []:
            trial = self.study._storage.get_trial(self.study._storage.get_trial_id_from_study_id_trial_number(
                self.study._study_id, entry["number"]))
            generation = next((v for k, v in trial.system_attrs.items() if k.endswith("generation")), None)
            if generation is not None:
                self.study._storage.set_trial_user_attr(trial._trial_id, "cma_generation", int(generation))
        return planned


class Pso(RoundAlgorithm):
    """nevergrad ``ConfPSO`` with its state pickled beside the study."""

    @staticmethod
    def sampler(spec: SearchSpec, cell: Cell):
        return _optuna().samplers.RandomSampler(seed=int(spec.raw["seed"]))

    @property
    def path(self) -> Path:
        return self.state_dir / "pso.pkl"

    def _load(self) -> dict[str, Any]:
        if self.path.is_file():
            with open(self.path, "rb") as f:
                return pickle.load(f)
        import nevergrad as ng

        start = self.spec.raw["start"]
        entries = {}
        for p in self.spec.params:
            init = min(max(float(start[p.name]), p.low), p.high)
            if p.log:
                scalar = ng.p.Log(init=init, lower=p.low, upper=p.high)
            else:
                scalar = ng.p.Scalar(init=init, lower=p.low, upper=p.high)
            if p.integer:
                scalar = scalar.set_integer_casting()
            entries[p.name] = scalar
        parametrization = ng.p.Dict(**entries)
        parametrization.random_state.seed(int(self.spec.raw["seed"]))
        budget = max(1, int(self.spec.raw["budget"]) // int(self.spec.raw["epochs"]))
        optimizer = ng.optimizers.ConfPSO(popsize=int(self.spec.raw["round_size"]))(parametrization, budget=budget)
        return {"optimizer": optimizer, "round": -1, "pending": {}, "told": set()}

    def _save(self, state: dict[str, Any]) -> None:
        from scoring.files import atomic_write

        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, pickle.dumps(state))

    def ask_step(self, step: int, remaining: int) -> list[dict[str, Any]] | None:
        n = self.round_count(remaining)
        if n <= 0:
            return None
        state = self._load()
        self._catch_up(state)
        if state["round"] != step:  # a round already asked (and saved) before a crash is reused
            state["pending"] = {k: state["optimizer"].ask() for k in range(n)}
            state["round"], state["told"] = step, set()
            self._save(state)
        out = []
        for k, candidate in state["pending"].items():
            params = {p.name: p.clip(candidate.value[p.name]) for p in self.spec.params}
            out.append(self._new_trial(step, params, index=k, epochs=int(self.spec.raw["epochs"])))
        return out

    def _catch_up(self, state: dict[str, Any]) -> None:
        """Tells nevergrad the values of trials the study has but the pickle missed (a crash
        between the study's tell and the pickle's save)."""
        for t in self.study.get_trials(deepcopy=False, states=(_optuna().trial.TrialState.COMPLETE,)):
            k = t.user_attrs.get("index")
            if t.user_attrs.get("round") == state["round"] and k in state["pending"] and k not in state["told"]:
                state["optimizer"].tell(state["pending"][k], float(t.value))
                state["told"].add(k)

    def tell(self, number: int, value: float) -> None:
        state = self._load()
        trial = self.study.get_trials(deepcopy=False)[number]
        k = trial.user_attrs.get("index")
        if trial.user_attrs.get("round") == state["round"] and k in state["pending"] and k not in state["told"]:
            state["optimizer"].tell(state["pending"][k], float(value))
            state["told"].add(k)
            self._save(state)


def bohb_brackets(n_budgets: int, eta: int) -> list[list[int]]:
    """hpbandster's brackets: for ``s = s_max .. 0``, the number of runs at each of its rungs
    (the first rung at budget index ``s_max - s``)."""
    s_max = n_budgets - 1
    out = []
    for s in range(s_max, -1, -1):
        n0 = int(math.floor(n_budgets / (s + 1)) * eta ** s)
        out.append([max(1, int(n0 // eta ** i)) for i in range(s + 1)])
    return out


class Bohb(Algorithm):
    """Synchronous BOHB (see the module docstring)."""

    RANDOM_FRACTION = 1 / 3

    @staticmethod
    def sampler(spec: SearchSpec, cell: Cell):
        return _optuna().samplers.RandomSampler(seed=int(spec.raw["seed"]))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.budgets = self.spec.bohb_budgets
        self.eta = int(self.spec.raw["bohb"]["eta"])
        self.brackets = bohb_brackets(len(self.budgets), self.eta)

    def bracket_cost(self, b: int) -> int:
        first = len(self.budgets) - len(self.brackets[b])
        return sum(n * self.budgets[first + i] for i, n in enumerate(self.brackets[b]))

    def _round_trials(self, r: int):
        return [t for t in self.study.get_trials(deepcopy=False) if t.user_attrs.get("round") == r]

    def ask_step(self, step: int, remaining: int) -> list[dict[str, Any]] | None:
        waves = len(self.budgets)
        r, wave = divmod(step, waves)
        if wave == 0:
            chosen, left = [], remaining
            for b in range(len(self.brackets)):
                if self.bracket_cost(b) <= left:
                    chosen.append(b)
                    left -= self.bracket_cost(b)
            if not chosen:
                return None
            out = []
            for b in chosen:
                first = len(self.budgets) - len(self.brackets[b])
                for k in range(self.brackets[b][0]):
                    params = self._propose(r, b, k)
                    config = f"{r}.{b}.{k}"
                    out.append(self._new_trial(r, params, bracket=b, rung=0, config=config,
                                               epochs=self.budgets[first]))
            return out
        out = []
        trials = self._round_trials(r)
        for b in sorted({t.user_attrs["bracket"] for t in trials}):
            rungs = self.brackets[b]
            if wave >= len(rungs):
                continue
            first = len(self.budgets) - len(rungs)
            previous = [t for t in trials if t.user_attrs["bracket"] == b and t.user_attrs["rung"] == wave - 1
                        and t.state == _optuna().trial.TrialState.COMPLETE]
            previous.sort(key=lambda t: (t.value, t.number))
            for t in previous[:rungs[wave]]:
                out.append(self._new_trial(r, dict(t.params), bracket=b, rung=wave, config=t.user_attrs["config"],
                                           promoted_from=t.number, epochs=self.budgets[first + wave]))
        return out

    def _propose(self, r: int, b: int, k: int) -> dict[str, Any]:
        """A new configuration: TPE on the largest budget with enough results, else random."""
        optuna = _optuna()
        rng = np.random.default_rng([int(self.spec.raw["seed"]), r, b, k])
        complete = [t for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
        enough = len(self.dists) + 2
        model_trials = []
        for budget in reversed(self.budgets):
            at = [t for t in complete if t.user_attrs.get("epochs") == budget]
            if len(at) >= enough:
                model_trials = at
                break
        seed = int(rng.integers(2 ** 31 - 1))
        if not model_trials or rng.random() < self.RANDOM_FRACTION:
            sampler = optuna.samplers.RandomSampler(seed=seed)
            temp = optuna.create_study(sampler=sampler)
        else:
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=0, multivariate=True)
            temp = optuna.create_study(sampler=sampler)
            temp.add_trials([optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                                       value=t.value) for t in model_trials])
        return dict(temp.ask(self.dists).params)


ALGORITHM_CLASSES = {"random": RandomSearch, "cmaes": CmaEs, "pso": Pso, "bohb": Bohb}


def make(spec: SearchSpec, cell: Cell, storage, state_dir: Path, search_id: str | None = None) -> Algorithm:
    """The algorithm of `cell` over its study in `storage` (created or loaded), named
    :meth:`SearchSpec.study_name` and owned by the output folder `search_id`.

    Raises:
        PGDLError: the study belongs to another output folder (the same spec searched elsewhere
            into the same storage).
    """
    optuna = _optuna()
    cls = ALGORITHM_CLASSES.get(cell.algorithm)
    if cls is None:
        raise PGDLError(f"unknown algorithm {cell.algorithm!r}")
    name = spec.study_name(cell)
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize",
                                sampler=cls.sampler(spec, cell), load_if_exists=True)
    owner = study.user_attrs.get("search_id")
    if search_id is not None:
        if owner is None:
            study.set_user_attr("search_id", search_id)
        elif owner != search_id:
            raise PGDLError(f"the storage already holds study {name!r} of the same spec searched into another "
                            f"output folder (search {owner}); continue that search in its folder, or give this "
                            f"one its own --storage")
    study.set_user_attr("algorithm", cell.algorithm)
    study.set_user_attr("objective", cell.objective)
    study.set_user_attr("alpha", cell.alpha)
    return cls(spec, cell, study, state_dir)
