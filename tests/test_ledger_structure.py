"""The ledger's query mixins cannot shadow one another: base-class order changes nothing."""

from __future__ import annotations

import itertools

from memorch.storage.history import SQLiteLedger
from memorch.storage.postgres import PostgresLedger
from memorch.storage.readonly import ReadOnlyLedger


def defined(cls: type) -> set[str]:
    return {name for name in vars(cls) if not (name.startswith("__") and name.endswith("__"))}


def test_no_two_bases_of_the_ledger_define_the_same_name() -> None:
    # The mixins type ``self`` with a Protocol (storage/sql.Transactions) instead of declaring
    # stand-in methods; a stand-in that raised NotImplementedError would win or lose by base order.
    bases = SQLiteLedger.__bases__
    assert len(bases) >= 3
    for a, b in itertools.combinations([*bases, SQLiteLedger], 2):
        assert not defined(a) & defined(b), (a.__name__, b.__name__, defined(a) & defined(b))


def test_every_ledger_resolves_each_query_to_its_one_definition() -> None:
    for ledger in (SQLiteLedger, PostgresLedger, ReadOnlyLedger):
        for base in SQLiteLedger.__bases__:
            for name in defined(base):
                owner = next(c for c in ledger.__mro__ if name in vars(c))
                # Either the mixin's definition, or a deliberate override in a ledger subclass.
                assert owner is base or issubclass(owner, SQLiteLedger), (ledger.__name__, name, owner)
