"""Every run in a random order, so that no test leans on what another left behind.

The modules are shuffled, and the tests in each. A module-scoped fixture with parameters (the
e2e tests' dockerd, rootful then rootless) starts once per parameter because pytest groups its
tests; here those groups stay whole, in a random order, and are shuffled inside: the suite
costs the same in any order. (pytest-randomly and pytest-random-order shuffle across the
groups: every switch is one more dockerd stack started and stopped.)

``--seed N`` repeats the order of a run (its header says the seed); ``--seed none`` keeps the
order the tests are written in.
"""

from __future__ import annotations

import random
from collections.abc import Hashable

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--seed", default=None, help="the random order's seed (printed in the header); 'none': as written")


def pytest_configure(config: pytest.Config) -> None:
    chosen = config.getoption("--seed")
    config.stash[_SEED] = None if chosen == "none" else int(chosen) if chosen else random.randrange(10**6)


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.stash[_SEED]
    return "order: as written" if seed is None else f"order: random, --seed {seed} repeats it"


@pytest.hookimpl(trylast=True)  # after pytest has grouped the tests of each fixture parameter
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    seed = config.stash[_SEED]
    if seed is None:
        return
    shuffle = random.Random(seed).shuffle
    modules: dict[object, list[list[pytest.Item]]] = {}
    for item in items:  # per module, the runs of tests that share their module-scoped parameters
        runs = modules.setdefault(item.path, [])
        if runs and _group(runs[-1][-1]) == _group(item):
            runs[-1].append(item)
        else:
            runs.append([item])
    order = list(modules.values())
    shuffle(order)
    items.clear()
    for runs in order:
        shuffle(runs)
        for run in runs:
            shuffle(run)
            items.extend(run)


def _group(item: pytest.Item) -> Hashable:
    """The parameters of the item's module-scoped fixtures: the tests that share them run together."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return ()
    definitions = item._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]
    return tuple(
        sorted(
            (name, repr(value))
            for name, value in callspec.params.items()
            if name in definitions and definitions[name][-1].scope in ("module", "package", "session")
        )
    )


_SEED = pytest.StashKey[int | None]()
