"""Sulston name algebra: parsing, letters, compact names, parents, daughters, ancestry."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devolens.lineage.names import (
    FOUNDERS,
    ancestors,
    compact_name,
    compact_names,
    daughters,
    division_axis,
    founder,
    generation,
    is_ancestor,
    is_valid_name,
    parent,
    parse_name,
    population_letter,
    population_letters,
)

LETTERED = ["AB", "MS", "E", "C", "D", "Z2", "Z3"]
# the expected founder-level divisions, written out independently of the module's table
FOUNDER_PAIRS = {"P0": ("AB", "P1"), "P1": ("EMS", "P2"), "EMS": ("MS", "E"), "P2": ("C", "P3"),
                 "P3": ("D", "P4"), "P4": ("Z2", "Z3")}

names_st = st.builds(lambda f, d: f + d, st.sampled_from(LETTERED), st.text(alphabet="aplrdv", max_size=12))
any_name_st = st.one_of(names_st, st.sampled_from(FOUNDERS))


@pytest.mark.parametrize(
    "name,letter",
    [("AB", "A"), ("ABalpapp", "A"), ("EMS", "E"), ("E", "E"), ("Ealp", "E"), ("MS", "M"), ("MSpaa", "M"),
     ("P0", "P"), ("P1", "P"), ("P4", "P"), ("C", "C"), ("Capp", "C"), ("D", "D"), ("Dpaa", "D"),
     ("Z2", "Z"), ("Z3", "Z"), (" ABa ", "A")],
)
def test_population_letter(name, letter):
    assert population_letter(name) == letter


@pytest.mark.parametrize("bad", [[], {}, "", "Nuc123", "polar1", "ab", "ABx", "P5", "P1a", "EMSa", "Z1", "ABa1", "X",
                                 "MSz", "A", "Nuc", None, float("nan"), 3])
def test_outside_scheme_is_none_never_a_crash(bad):
    assert population_letter(bad) is None
    assert not is_valid_name(bad)
    assert parse_name(bad) is None and founder(bad) is None and parent(bad) is None
    assert daughters(bad) is None and compact_name(bad, 2) is None and generation(bad) is None
    assert ancestors(bad) == [] and not is_ancestor(bad, "ABa") and not is_ancestor("AB", bad)


def test_founders_and_generation():
    assert [generation(f) for f in ("P0", "AB", "P1", "EMS", "P2", "MS", "E", "C", "P3", "D", "P4", "Z2")] == [
        0, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 5]
    assert generation("ABa") == 2 and generation("ABalpp") == 5 and generation("MSa") == 4
    assert founder("ABalp") == "AB" and founder("Z3") == "Z3" and founder("Epp") == "E"


def test_founder_divisions():
    for mother, pair in FOUNDER_PAIRS.items():
        assert daughters(mother) == pair
        assert daughters(mother, axis="lr") == pair  # axis ignored for founder divisions
        for d in pair:
            assert parent(d) == mother
    assert parent("P0") is None


def test_daughters_along_axes():
    assert daughters("AB") == ("ABa", "ABp")
    assert daughters("ABal", "lr") == ("ABall", "ABalr")
    assert daughters("MSp", "dv") == ("MSpd", "MSpv")
    with pytest.raises(ValueError):
        daughters("AB", "xy")
    assert division_axis("ABal") == "lr" and division_axis("MSpd") == "dv" and division_axis("AB") is None


def test_compact_names():
    assert compact_name("ABalpp", 0) == "AB"
    assert compact_name("ABalpp", 2) == "ABal"
    assert compact_name("ABalpp", 10) == "ABalpp"
    assert compact_name("EMS", 3) == "EMS" and compact_name("P2", 1) == "P2"
    with pytest.raises(ValueError):
        compact_name("AB", -1)
    s = compact_names(pd.Series(["ABalp", "Nuc1", "MSa", "P3"]), 1)
    assert s.tolist()[0] == "ABa" and s.isna().tolist() == [False, True, False, False]


def test_vectorised_letters():
    s = population_letters(pd.Series(["ABa", "", "EMS", "polar1", "Z2"]))
    assert s.tolist()[0] == "A" and s.tolist()[2] == "E" and s.tolist()[4] == "Z"
    assert s.isna().tolist() == [False, True, False, True, False]


def test_ancestry():
    assert is_ancestor("AB", "ABalp") and is_ancestor("ABa", "ABalp") and is_ancestor("P0", "ABalp")
    assert is_ancestor("P1", "MSa") and is_ancestor("EMS", "Ep") and is_ancestor("P2", "Z3")
    assert not is_ancestor("ABp", "ABalp") and not is_ancestor("MS", "Ea") and not is_ancestor("ABa", "MS")
    assert not is_ancestor("ABa", "ABa") and is_ancestor("ABa", "ABa", include_self=True)
    assert not is_ancestor("ABalp", "ABa")
    assert ancestors("MSa") == ["MS", "EMS", "P1", "P0"]


# ----------------------------------------------------------------------------- properties
@given(any_name_st)
def test_parent_of_daughter_is_self(name):
    for axis in ("ap", "lr", "dv"):
        if name.startswith(("Z2", "Z3")):  # the primordial germ cells do not divide in the embryo
            assert daughters(name, axis) is None
            continue
        for d in daughters(name, axis):
            assert parent(d) == name
            assert generation(d) == generation(name) + 1
            assert is_ancestor(name, d)


@given(names_st.filter(lambda n: len(n) > 2 and n[-1] in "aplrdv" and n not in ("EMS",)
                       and not n.startswith(("Z2", "Z3"))))  # (no daughters: Z2 and Z3 do not divide in the embryo)
def test_daughters_of_parent_contain_self(name):
    p = parent(name)
    axis = division_axis(name)
    if axis is None:  # a founder such as "MS"
        assert name in daughters(p)
    else:
        assert name in daughters(p, axis)


@given(any_name_st, st.integers(min_value=0, max_value=14))
def test_compact_round_trips(name, depth):
    c = compact_name(name, depth)
    assert is_valid_name(c)
    assert compact_name(c, depth) == c  # idempotent
    assert is_ancestor(c, name, include_self=True)
    assert population_letter(c) == population_letter(name)
    assert founder(c) == founder(name)
    assert compact_name(name, 0) == founder(name)
    # deeper compaction refines: compacting a deeper compact name back gives the shallower one
    assert compact_name(compact_name(name, depth + 1), depth) == c


@settings(max_examples=200)
@given(any_name_st)
def test_ancestors_chain_ends_at_zygote(name):
    chain = ancestors(name)
    assert len(chain) == generation(name)
    if chain:
        assert chain[-1] == "P0"
        for a in chain:
            assert is_ancestor(a, name)
    letters = {population_letter(a) for a in chain if founder(a) == founder(name)}
    assert letters <= {population_letter(name)}


def test_misspelt_names_are_found_and_unnamed_ones_are_not():
    from devolens.lineage.names import misspelt_names

    names = ["ABpl", "ABpL", "ABpLa", "msAp", "abal", "Eax", "MSa", "Z2", "Nuc012", "polar1", "", None, "Xap", "P5",
             "ABpL", "Dead", "Cell", "Epi", "Debris", "Dada", "EMS", "P0"]
    assert misspelt_names(names) == ["ABpL", "ABpLa", "abal", "msAp"]  # ('Dada' is a Sulston name: D, a, d, a)
