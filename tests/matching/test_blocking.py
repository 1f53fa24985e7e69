import pickle

import numpy as np
import polars as pl
import pytest

from matching.blocking import (
    _PRIO,
    _bigram_sketch,
    _CheapSide,
    _letter_signature,
    _pairs_across_sources,
    _pairs_in_units,
    _top_k,
    all_candidate_pairs,
    candidate_pairs,
    episode_credits,
    episode_number,
    name_anagram,
    pairing_units,
    partition_members,
    person_compact,
    person_name_key,
    person_one_typo,
    person_skeleton,
    person_stems,
    plan_partitions,
    prepare_for,
    prepare_for_groups,
    record_units,
    shared_people,
    title_exact,
    title_prefix,
    title_tokens,
)
from tests.matching.builders import movie, person, records

KEYS = ["left_source", "left_id", "right_source", "right_id"]
_WORDS = [f"{a}{b} {c}" for a in ("Amber", "Cedar", "Harbor", "Lantern", "Meadow", "Quarry", "Tundra", "Zephyr")
          for b in ("fall", "gate", "mill", "road", "song", "wood") for c in ("Dawn", "Dusk", "Noon", "Night", "Tide")]


def _catalogue(n: int = 600, seed: int = 0):
    """Three sources sharing films whose titles overlap in several keys (tokens, prefixes, years)."""
    rng = np.random.default_rng(seed)
    words = ["love", "night", "man", "day", "dark", "house", "blue", "city", "star", "war"]
    rows = []
    for i in range(n):
        title = f"{rng.choice(words)} {rng.choice(words)} {i % 40}".title()
        year = int(rng.integers(1960, 2020))
        for source in ("imdb", "tmdb", "tvdb"):
            if rng.random() < 0.8:
                rows.append(movie(source, f"{i}", title, year + int(rng.integers(-1, 2)), directors=["Ann Lee"]))
        if i % 3 == 0:
            rows.append(person("imdb", f"p{i}", f"Ann{i} Lee"))
            rows.append(person("tmdb", f"p{i}", f"Lee, Ann{i}"))
    return records(rows)


def _keys(table) -> pl.DataFrame:
    return pl.from_arrow(table).select(KEYS).sort(KEYS)


@pytest.mark.parametrize("n_partitions", [2, 5, 16])
def test_pairs_exactly_once_across_partitions(n_partitions: int) -> None:
    recs = _catalogue()
    pairs = pl.from_arrow(all_candidate_pairs(recs, plan_partitions(recs, n_partitions=n_partitions, max_block=40)))
    assert pairs.height > 0
    assert not pairs.select(pl.struct(KEYS).is_duplicated().any()).item()
    single = all_candidate_pairs(recs, plan_partitions(recs, n_partitions=1, max_block=40))
    assert pairs.select(KEYS).sort(KEYS).equals(_keys(single))
    assert set(pairs["partition"].unique()) <= set(range(n_partitions))


def test_a_typo_past_the_prefix_sorts_beside_its_original_in_a_big_block() -> None:
    """Inside a windowed block, titles of one year sort alphabetically: a typo that keeps the start stays near."""
    rows = [movie(s, f"{s}{i}", f"Secret {w}", 1995) for i, w in enumerate(_WORDS) for s in ("a", "b")]
    rows += [movie("a", "x", "Secret Kingdom in Nenejo", 1995), movie("b", "x", "Secret Kingdom in eNnejo", 1995)]
    recs = records(rows)
    plan = plan_partitions(recs, [title_prefix(6)], n_partitions=2, max_block=20)  # one 'secret' block, windowed
    pairs = _keys(all_candidate_pairs(recs, plan))
    assert ("a", "x", "b", "x") in pairs.rows()


def test_prolific_director_is_windowed_and_balanced() -> None:
    rows = []
    for i in range(5000):
        for source in ("a", "b"):
            rows.append(movie(source, f"{i}", f"Film number {i}", 1950 + i % 60, directors=["Woody Allen"]))
    recs = records(rows)
    plan = plan_partitions(recs, [shared_people("directors")], n_partitions=8, max_block=200)
    units = record_units(prepare_for(plan, recs), plan)
    assert units.group_by("unit").len()["len"].max() <= 200
    assert plan.costs.max() / np.median(plan.costs) < 2
    pairs = pl.from_arrow(all_candidate_pairs(recs, plan))
    per_part = pairs.group_by("partition").len()["len"]
    assert per_part.len() == 8
    assert per_part.max() / per_part.median() < 2
    # sorted neighbourhood by (year, title) still finds each film's twin
    twins = pairs.filter(pl.col("left_id") == pl.col("right_id")).height
    assert twins >= 0.99 * 5000


def test_only_compatible_types_pair() -> None:
    recs = records([
        movie("a", "1", "Madonna", 1990), person("b", "1", "Madonna", 1958),
        {"source": "b", "source_id": "2", "type": "series", "name": "Madonna", "year": 1990},
    ])  # fmt: skip
    assert all_candidate_pairs(recs, plan_partitions(recs, [title_exact()])).num_rows == 0
    merged = plan_partitions(recs, [title_exact()], groups={"movie": "work", "series": "work"})
    assert _keys(all_candidate_pairs(recs, merged)).rows() == [("a", "1", "b", "2")]


def test_within_source_is_a_parameter() -> None:
    recs = records([movie("a", "1", "Heat", 1995), movie("a", "2", "Heat", 1995), movie("b", "1", "Heat", 1995)])
    cross = _keys(all_candidate_pairs(recs, plan_partitions(recs, [title_exact()])))
    assert cross.rows() == [("a", "1", "b", "1"), ("a", "2", "b", "1")]
    within = all_candidate_pairs(recs, plan_partitions(recs, [title_exact()], within_source=True))
    assert within.num_rows == 3


def test_rule_column_names_the_first_rule() -> None:
    recs = records([movie("a", "1", "Rocky IV", 1985), movie("b", "1", "Rocky 4", 1985, directors=["x"])])
    pairs = pl.from_arrow(all_candidate_pairs(recs, plan_partitions(recs)))
    assert pairs["rule"].to_list() == ["title_exact"]


def test_craig_daniel_blocks_with_daniel_craig() -> None:
    recs = records([person("a", "1", "Craig, Daniel", 1968), person("b", "9", "Daniel Craig", 1968)])
    pairs = pl.from_arrow(all_candidate_pairs(recs, plan_partitions(recs)))
    assert pairs.select(KEYS).rows() == [("a", "1", "b", "9")]
    assert pairs["rule"].to_list() == ["person_name_key"]


def test_a_moved_space_still_blocks() -> None:
    """'CarlB rikuelli' shares no name token with 'Carl Brikuelli'; the names without spaces are equal."""
    recs = records([person("a", "1", "CarlB rikuelli", 1959), person("b", "9", "Carl Brikuelli", 1959)])
    pairs = pl.from_arrow(all_candidate_pairs(recs, plan_partitions(recs)))
    assert pairs.select(KEYS).rows() == [("a", "1", "b", "9")]
    assert pairs["rule"].to_list() == ["person_compact"]


def test_a_vowel_typo_in_a_surname_blocks() -> None:
    """A vowel added, a vowel swapped with its neighbour, a vowel typed for the space: the consonants agree."""
    recs = records([person("a", "1", "Aiko Nkaman"), person("b", "9", "Aiko Nekaman"),
                    person("a", "2", "Sofia nAhaov"), person("b", "8", "Sofia Anhaov"),
                    person("a", "3", "PabloaPeyao"), person("b", "7", "Pablo Peyao")])
    assert all_candidate_pairs(recs, plan_partitions(recs, [person_name_key(), person_compact()])).num_rows == 0
    pairs = _keys(all_candidate_pairs(recs, plan_partitions(recs, [person_skeleton()])))
    assert pairs.rows() == [("a", "1", "b", "9"), ("a", "2", "b", "8"), ("a", "3", "b", "7")]


def test_person_one_typo_finds_a_consonant_typo_the_skeleton_misses() -> None:
    recs = records([person("a", "1", "Eva Guisberg"), person("b", "9", "Eva Guisbeog")])
    assert all_candidate_pairs(recs, plan_partitions(recs, [person_skeleton()])).num_rows == 0
    assert _keys(all_candidate_pairs(recs, plan_partitions(recs, [person_one_typo()]))).rows() == [("a", "1", "b", "9")]


def test_person_one_typo_needs_one_edit_and_a_long_name() -> None:
    two_edits = [person("a", "1", "Julia Osrama"), person("b", "9", "Jilia Osraama")]
    short = [person("a", "2", "Ji An"), person("b", "8", "Ji Ann")]  # 'jian' is under min_chars
    recs = records(two_edits + short)
    assert all_candidate_pairs(recs, plan_partitions(recs, [person_one_typo()])).num_rows == 0
    recs = records(short)
    assert all_candidate_pairs(recs, plan_partitions(recs, [person_one_typo(min_chars=4)])).num_rows == 1


def test_name_anagram_blocks_swapped_letters_in_titles_and_names() -> None:
    """'oCntact' shares no word, no prefix and no exact title with 'Contact'; the sorted letters agree."""
    recs = records([movie("a", "1", "oCntact", 1958), movie("b", "9", "Contact", 1958),
                    person("a", "2", "Hna Birkais"), person("b", "8", "Han Brikais"),
                    movie("a", "3", "Fury", 2002), movie("b", "7", "Fuyr", 2002),
                    movie("a", "4", "Verigo", 1988), movie("b", "6", "Vertigo", 1988)])  # a deletion: no key
    rules = [title_exact(), title_prefix(6), title_tokens(), person_name_key(), person_compact()]
    assert all_candidate_pairs(recs, plan_partitions(recs, rules)).num_rows == 0
    pairs = _keys(all_candidate_pairs(recs, plan_partitions(recs, [name_anagram()])))
    assert pairs.rows() == [("a", "1", "b", "9"), ("a", "2", "b", "8"), ("a", "3", "b", "7")]
    assert all_candidate_pairs(recs, plan_partitions(recs, [name_anagram(min_chars=5)])).num_rows == 2  # not Fury


def _episode(source: str, source_id: str, name: str, parent: str, season: int, number: int, **fields) -> dict:
    return {"source": source, "source_id": source_id, "type": "episode", "name": name, "parent": parent,
            "season": season, "episode": number, **fields}


def test_a_translated_episode_of_a_translated_series_meets_its_original_by_its_makers_and_number() -> None:
    """No title and no series title in common: a shared writer or director and S7E9 name the same episode."""
    recs = records([
        _episode("a", "1", "Doux Pont", "Le Jeu Etrange de Havedor", 7, 9, writers=["Iris Quiisano"]),
        _episode("b", "1", "The Sweet Bridge", "The Strange Game of Havedor", 7, 9, writers=["Iris Quiisano"]),
        _episode("b", "2", "The Bitter City", "The Strange Game of Havedor", 7, 10, writers=["Iris Quiisano"]),
        _episode("b", "3", "Sea Glass", "Another Show", 7, 9, writers=["Mina Kahai"]),
        # directors only on one side (no writers list at all): still a key
        _episode("a", "4", "Nuit Froide", "Vent du Nord", 1, 1, directors=["Ana Lind"]),
        _episode("b", "4", "Cold Night", "North Wind", 1, 1, directors=["Ana Lind"], writers=["Sara Yalinek"]),
    ])
    assert all_candidate_pairs(recs, plan_partitions(recs, [title_exact(), episode_number()])).num_rows == 0
    pairs = _keys(all_candidate_pairs(recs, plan_partitions(recs, [episode_credits()])))
    assert pairs.rows() == [("a", "1", "b", "1"), ("a", "4", "b", "4")]


def test_in_a_block_of_one_title_the_names_do_not_rank_partners() -> None:
    """Every record bears both 'Golden Window' and 'Dore Fenetre' (name and alias, either way round). By name,
    a1 prefers the undated b records called 'Golden Window' and b1 the a records called 'Dore Fenetre' from
    other decades; the block's title is given, so year and director must decide, and they pick each other."""
    both = {"Golden Window": ["Dore Fenetre"], "Dore Fenetre": ["Golden Window"]}
    rows = [movie("a", "1", "Golden Window", 2014, aliases=both["Golden Window"], directors=["Oscar Tomiberg"]),
            movie("b", "1", "Dore Fenetre", 2014, aliases=both["Dore Fenetre"], directors=["Oscar Tomiberg"])]
    rows += [movie("b", f"{i}", "Golden Window", None, aliases=both["Golden Window"], directors=[f"Director {i}"])
             for i in (2, 3)]
    rows += [movie("a", f"{i}", "Dore Fenetre", year, aliases=both["Dore Fenetre"], directors=[f"Director {i}"])
             for i, year in ((2, 1990), (3, 2040))]
    recs = records(rows)
    pairs = _keys(all_candidate_pairs(recs, plan_partitions(recs, [title_exact().keep(1)], n_partitions=1)))
    assert ("a", "1", "b", "1") in pairs.rows()


def test_person_stems_block_transliterated_names() -> None:
    recs = records([person("a", "1", "Gummaluri Sastri"), person("b", "9", "Gummuluri Sastry"),
                    person("a", "2", "Vijayshanti", 1966), person("b", "8", "Vijayashanti")])
    assert all_candidate_pairs(recs, plan_partitions(recs)).num_rows == 0  # no default rule sees them
    pairs = pl.from_arrow(all_candidate_pairs(recs, plan_partitions(recs, [person_stems()])))
    assert sorted(pairs.select(KEYS).rows()) == [("a", "1", "b", "9"), ("a", "2", "b", "8")]


def test_a_translated_title_meets_its_original_by_year_and_running_time_where_they_are_rare() -> None:
    rows = [movie("a", "1", "Otklonenie", 1967, runtime_min=78.0), movie("b", "9", "Detour", 1967, runtime_min=78.0),
            movie("b", "8", "Sunday", 1967, runtime_min=92.0)]
    pairs = pl.from_arrow(all_candidate_pairs(records(rows), plan_partitions(records(rows))))
    assert pairs.select(KEYS).rows() == [("a", "1", "b", "9")] and pairs["rule"].to_list() == ["year_runtime"]
    # among thirty 78-minute films of 1967 the same evidence means nothing: the block is purged
    crowd = rows + [movie(s, f"c{i}", f"Film {i}", 1967, runtime_min=78.0) for i in range(15) for s in ("a", "b")]
    pairs = pl.from_arrow(all_candidate_pairs(records(crowd), plan_partitions(records(crowd))))
    assert "year_runtime" not in set(pairs["rule"])


def test_purged_rule_drops_oversized_blocks_instead_of_windowing() -> None:
    rows = [movie(s, f"{i}", "Night", 1950 + i % 60) for i in range(300) for s in ("a", "b")]
    rows += [movie("a", "x", "Quiet Heron", 2000), movie("b", "x", "Quiet Heron Returns", 2001)]
    recs = records(rows)
    windowed = plan_partitions(recs, [title_tokens()], n_partitions=2, max_block=50)
    purged = plan_partitions(recs, [title_tokens().purged()], n_partitions=2, max_block=50)
    assert all_candidate_pairs(recs, windowed).num_rows > 300
    pairs = pl.from_arrow(all_candidate_pairs(recs, purged))
    # the 600-record 'night' block is gone; the small 'quiet'/'heron' blocks remain
    assert pairs.select("left_id", "right_id").rows() == [("x", "x")]
    assert pickle.loads(pickle.dumps(purged.rules[0])).purge


def test_a_rule_window_overrides_the_plan_max_block() -> None:
    rows = [movie(s, f"{i}", f"Film number {i}", 1950 + i % 60, directors=["Woody Allen"])
            for i in range(400) for s in ("a", "b")]
    recs = records(rows)
    rule = shared_people("directors").window(40)
    plan = plan_partitions(recs, [rule], n_partitions=2, max_block=1000)  # the plan alone would keep one block
    units = record_units(prepare_for(plan, recs), plan)
    assert units.group_by("unit").len()["len"].max() <= 40
    assert pickle.loads(pickle.dumps(rule)).max_block == 40
    pairs = pl.from_arrow(all_candidate_pairs(recs, plan))
    assert pairs.filter(pl.col("left_id") == pl.col("right_id")).height >= 0.99 * 400


def test_common_title_partner_is_chosen_by_its_director() -> None:
    """Forty 'Mother's a year apart, one partner each: top-1 must pick the one by the same director."""
    rows = []
    for i in range(40):
        for source in ("a", "b"):
            rows.append(movie(source, f"{i}", "Mother", 2000 + i % 2, directors=[f"Director {i}"]))
    recs = records(rows)
    plan = plan_partitions(recs, [title_exact().keep(1)], n_partitions=1, max_block=1000)
    pairs = pl.from_arrow(all_candidate_pairs(recs, plan))
    assert pairs.filter(pl.col("left_id") == pl.col("right_id")).height == 40


def _mothers(undated: dict, role: str = "directors"):
    """Two hundred 'Mother's over sixty years, each made by its own person in ``role``; source b's 59 is undated,
    a's 59 is from 1999."""
    made = lambda i: {role: [f"Maker {i}"]}  # noqa: E731
    rows = [movie("a", f"{i}", "Mother", 1940 + i % 60, **made(i)) for i in range(200)]
    rows += [movie("b", f"{i}", "Mother", 1940 + i % 60, **made(i)) for i in range(200) if i != 59]
    rows.append(movie("b", "59", year=None, **made(59), **undated))
    return records(rows)


def _finds_59(recs, plan) -> bool:
    pairs = pl.from_arrow(all_candidate_pairs(recs, plan))
    return pairs.filter((pl.col("left_id") == "59") & (pl.col("right_id") == "59")).height == 1


def test_undated_record_sorts_beside_the_dated_one_with_its_title_and_director() -> None:
    recs = _mothers({"name": "Mother"})
    assert _finds_59(recs, plan_partitions(recs, [title_exact().keep(1)], n_partitions=2, max_block=40))


def test_undated_record_without_director_or_cast_sorts_beside_the_dated_one_with_its_writer() -> None:
    """Placed in 1999 by its writer, where two other 'Mother's of each source tie with it on title and year: the
    same writer must also rank it first."""
    recs = _mothers({"name": "Mother"}, role="writers")
    assert _finds_59(recs, plan_partitions(recs, [title_exact().keep(1)], n_partitions=2, max_block=40))


def test_namesakes_of_one_year_line_up_by_their_makers() -> None:
    """Two hundred 'Mother's of 2000, each in sources a and b; b leaves the directors out. In windows of 40, every
    record must still meet its own entity: ordered by writers, the two copies sit side by side."""
    rows = [movie("a", f"{i}", "Mother", 2000, directors=[f"Director {i}"], writers=[f"Writer {i}"])
            for i in range(200)]
    rows += [movie("b", f"{i}", "Mother", 2000, writers=[f"Writer {i}"]) for i in range(200)]
    recs = records(rows)
    pairs = pl.from_arrow(all_candidate_pairs(recs, plan_partitions(recs, [title_exact().keep(1)], max_block=40)))
    assert pairs.filter(pl.col("left_id") == pl.col("right_id")).height == 200


def test_undated_record_known_by_an_alias_meets_its_partner_only_when_spread() -> None:
    """Its own title ('Madeo') has no dated twin to place it by, so it sorts first, in the oldest window."""
    recs = _mothers({"name": "Madeo", "aliases": ["Mother"]})
    plain = plan_partitions(recs, [title_exact().keep(1)], n_partitions=2, max_block=40)
    spread = plan_partitions(recs, [title_exact().keep(1).undated_everywhere()], n_partitions=2, max_block=40)
    assert not _finds_59(recs, plain) and _finds_59(recs, spread)
    assert pickle.loads(pickle.dumps(spread.rules[0])).spread_undated


def test_enumerating_in_slices_gives_the_same_pairs(monkeypatch) -> None:
    rows = [movie(s, f"{i}", f"Film {i % 40} part {i % 7}", 1990 + i % 9) for i in range(400) for s in ("a", "b")]
    recs = records(rows)
    plan = plan_partitions(recs, n_partitions=2)
    whole = _keys(candidate_pairs(recs, plan, 0))
    monkeypatch.setattr("matching.blocking._SLICE_PAIRS", 50)
    assert plan.costs[0] // 50 > 2  # really sliced
    assert _keys(candidate_pairs(recs, plan, 0)).equals(whole)


def test_pairs_across_sources_are_the_self_join_s_cross_source_pairs() -> None:
    """One join per pair of sources gives exactly the filtered self-join: each pair once, rid < rid_r."""
    rng = np.random.default_rng(3)
    src = np.sort(rng.integers(1, 5, 600)).astype(np.uint16)  # rids numbered in source order
    members = pl.DataFrame({
        "rid": np.arange(600, dtype=np.uint32), "unit": rng.integers(0, 40, 600).astype(np.uint64), "src": src,
    }).with_row_index("member")
    fast, plain = _pairs_across_sources(members), _pairs_in_units(members, within_source=False)
    order = ["unit", "rid", "rid_r"]
    assert fast.height == plain.height > 0
    assert fast.select(plain.columns).sort(order).equals(plain.sort(order))
    one_source = members.with_columns(src=pl.lit(1, pl.UInt16))
    assert _pairs_across_sources(one_source).is_empty()
    assert _pairs_across_sources(one_source).schema == plain.schema


def test_pairing_units_keep_only_units_that_can_pair() -> None:
    units = pl.DataFrame(
        {"rid": [0, 1, 2, 3, 0, 2], "unit": [10, 10, 11, 11, 12, 13], "partition": [0, 0, 1, 1, 0, 1]},
        schema={"rid": pl.UInt32, "unit": pl.UInt64, "partition": pl.Int32},
    )
    prep = pl.DataFrame({"rid": [0, 1, 2, 3], "src": [1, 2, 1, 1]}, schema={"rid": pl.UInt32, "src": pl.UInt16})
    across = pairing_units(units, prep, within_source=False)
    assert across.sort("rid")["unit"].to_list() == [10, 10]  # 11 holds one source, 12 and 13 one record
    within = pairing_units(units, prep, within_source=True)
    assert sorted(set(within["unit"].to_list())) == [10, 11]


def test_partition_members_bring_every_unit_of_their_members() -> None:
    """Ownership needs a member's units in other partitions too; rids come renumbered from 0."""
    units = pl.DataFrame(
        {"rid": [5, 7, 7, 9, 9, 5], "unit": [1, 1, 2, 2, 3, 3], "partition": [0, 0, 1, 1, 2, 2]},
        schema={"rid": pl.UInt32, "unit": pl.UInt64, "partition": pl.Int32},
    )
    got = {p: (members.tolist(), mine.rows()) for p, members, mine in partition_members(units, 4)}
    assert got[0] == ([5, 7], [(0, 1, 0), (0, 3, 2), (1, 1, 0), (1, 2, 1)])
    assert got[1] == ([7, 9], [(0, 1, 0), (0, 2, 1), (1, 2, 1), (1, 3, 2)])
    assert got[2] == ([5, 9], [(0, 1, 0), (0, 3, 2), (1, 2, 1), (1, 3, 2)])
    assert got[3] == ([], [])


def test_bigram_sketch_is_a_set_of_a_names_bigrams_and_ends() -> None:
    text = pl.Series(["xx", "knives out", "knives out", None, "", "tuo sevink", "k", "дом"])[1:]  # an offset slice
    sketch = _bigram_sketch(text)
    assert sketch[0] == sketch[1] != 0 and sketch[2] == sketch[3] == 0
    assert sketch[4] != sketch[0]  # the same letters, other bigrams
    assert 1 <= np.bitwise_count(sketch[5]) <= 2 and sketch[6] != 0  # one byte: its ends; non-ASCII: its bytes


def test_partners_rank_by_how_alike_their_names_are() -> None:
    """The ranking score's name term (Dice of bigram sketches) orders partners as an edit ratio would."""
    names = ["knives out", "knives out", "knievs out", "knives out 2", "glass onion a knives out mystery", "mother"]
    recs = records([movie("a" if i == 0 else "b", str(i), name, None) for i, name in enumerate(names)])
    prep = prepare_for_groups(recs, {})
    side = _CheapSide.of(prep)
    rid = {sid: r for sid, r in zip(prep["source_id"], prep["rid"], strict=True)}
    pairs = pl.DataFrame({"rid": [rid["0"]] * 5, "rid_r": [rid[str(i)] for i in range(1, 6)]})
    score = side.score(pairs, np.zeros(5, dtype=bool))
    assert score[0] == 1.0  # the same name
    assert 1.0 > score[1] > score[3] > score[4]  # a swap; then a subtitle; then nothing alike
    assert 1.0 > score[2] > score[4]  # a sequel number


def test_top_k_keeps_each_record_s_k_best_per_unit_and_other_source() -> None:
    """The dense-group maxima keep what a plain rank over (membership, other source) keeps, ties included."""
    rng = np.random.default_rng(5)
    prio = rng.integers(0, 3, 800).astype(np.uint64)
    members = pl.DataFrame({
        "rid": rng.integers(0, 300, 800).astype(np.uint32),
        "unit": prio * _PRIO + rng.integers(0, 60, 800).astype(np.uint64),
        "src": rng.integers(1, 4, 800).astype(np.uint16),
    }).unique(["rid", "unit"]).with_row_index("member")
    pairs = _pairs_in_units(members, within_source=True)
    score = rng.integers(0, 4, pairs.height) / 4  # coarse: many ties, broken by the partner's rid
    k_by_prio = {0: 1, 1: 3, 2: 2}
    q = pl.Series(((score + 1.0) * 1_000_000).astype(np.int64) * 2**32)
    k = (pl.col("unit") // _PRIO).replace_strict(k_by_prio, return_dtype=pl.Int64)
    rank = lambda partner, by: (pl.col("q") - pl.col(partner).cast(pl.Int64)).rank("min", descending=True).over(by)  # noqa: E731
    expected = pairs.with_columns(q=q).filter(
        (rank("rid_r", ["member", "src_r"]) <= k) | (rank("rid", ["member_r", "src"]) <= k)
    ).select("rid", "rid_r", "unit")
    kept = _top_k(pairs, score, k_by_prio)
    order = ["unit", "rid", "rid_r"]
    assert 0 < kept.height < pairs.height
    assert kept.sort(order).equals(expected.sort(order))
    assert _top_k(pairs.clear(), score[:0], k_by_prio).is_empty()


def test_one_entity_s_blocks_share_a_partition() -> None:
    """Light units go where their smallest member hashes: a film's exact title, prefix, token and anagram
    blocks hold the same three records, so those are written to one partition's inputs, not one per block."""
    rng = np.random.default_rng(11)
    words = ["".join(rng.choice(list("bcdfghklmnprstvz"), 7)) for _ in range(120)]
    rows = [
        movie(source, f"{source}{i}", f"{words[2 * i]} {words[2 * i + 1]}", 1950 + i)
        for i in range(60)
        for source in ("a", "b", "c")
    ]
    prep = prepare_for(plan := plan_partitions(recs := records(rows), n_partitions=16), recs)
    units = pairing_units(record_units(prep, plan), prep, within_source=False)
    assert plan.heavy.is_empty()
    assert units["unit"].n_unique() >= 3 * 60  # several blocks per film
    assert units.group_by("rid").agg(pl.col("partition").n_unique())["partition"].max() == 1
    assert units["partition"].n_unique() > 8  # while the films are spread


def test_letter_signature_ignores_order_only() -> None:
    text = pl.Series(["xxcontact", "oCntact", "Contact", "contact", None, "", "amélie", "éamile", "amelie"])[1:]
    sig = _letter_signature(text).to_list()
    assert sig[0] == sig[1] != sig[2]  # the same letters in another order; a capital is another letter
    assert sig[3] is None and sig[4] is not None
    assert sig[5] == sig[6] != sig[7]
