"""Ingest end to end on small raw files: mapping, line numbers, quarantine, strict mode."""

import json

import polars as pl
import pytest

from kg.errors import IngestError
from tests.ingest.helpers import run

GOOD = [
    {"id": "1", "title": "Knives Out", "year": 2019, "cast": [{"name": "Craig, Daniel"}, {"name": "Ana de Armas"}]},
    {"id": "2", "title": "Mother", "year": "2009-05-28"},
    {"id": "3", "name": "Bong Joon-ho", "born": "1969"},
]


def jsonl(rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def test_maps_nested_json_lines(tmp_path):
    report, records, quarantine = run(tmp_path, jsonl(GOOD))
    assert (report.rows_in, report.records, report.quarantined) == (3, 3, 0)
    rows = {r["source_id"]: r for r in records.iter_rows(named=True)}
    assert rows["1"]["cast"] == ["Daniel Craig", "Ana de Armas"]
    assert rows["2"]["year"] == 2009 and rows["1"]["year"] == 2019
    assert rows["3"]["type"] == "person" and rows["3"]["name"] == "Bong Joon-ho"
    assert records["source"].unique().to_list() == ["src"]
    assert quarantine.height == 0


def test_bad_rows_are_quarantined_with_file_line_and_field(tmp_path):
    rows = [
        GOOD[0],
        '{"id": "9", "title": "broken",',  # line 2: malformed
        "",  # line 3: blank, not a row
        {"title": "no id"},  # line 4
        {"id": "1", "title": "again"},  # line 5: duplicate of line 1
        {"id": "5", "title": "T", "year": "soon"},  # line 6: not a year
        {"id": "6", "title": {"en": "nested"}},  # line 7: object where text belongs
        "[1, 2]",  # line 8: not an object
        GOOD[1],  # line 9
    ]
    report, records, quarantine = run(tmp_path, jsonl(rows))
    assert report.rows_in == 8 and report.rows_in == report.records + report.quarantined
    assert records["line"].to_list() == [1, 9]
    got = {r["line"]: (r["field"], r["reason"]) for r in quarantine.iter_rows(named=True)}
    assert got[2][0] is None and got[2][1].startswith("malformed JSON")
    assert got[4] == ("id", "id: missing id")
    assert got[5][0] == "id" and "duplicate id '1'" in got[5][1] and "raw.jsonl:1" in got[5][1]
    assert got[6] == ("year", "year: cannot parse 'soon' as a year")
    assert got[7][0] == "name" and "found an object" in got[7][1]
    assert "expected a JSON object" in got[8][1]
    assert set(quarantine["file"]) == {str(tmp_path / "raw.jsonl")}
    assert report.files[0].blank_lines == 1


def test_types_that_change_between_rows_take_the_slow_path_and_agree(tmp_path):
    # pyarrow refuses a column that is a number in one row and text in the next.
    mixed = [{"id": 1, "title": "A", "year": 2001}, {"id": "2", "title": "B", "year": "2002"}]
    _, records, _ = run(tmp_path, jsonl(mixed))
    assert records.select("source_id", "year").rows() == [("1", 2001), ("2", 2002)]


def test_fast_and_slow_paths_give_identical_records(tmp_path):
    rows = [{**r, "id": str(i)} for i, r in enumerate(GOOD * 50)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, fast, _ = run(tmp_path / "a", jsonl(rows))
    _, slow, q = run(tmp_path / "b", jsonl(rows + ['{"bad']))  # one bad line sends the block to the slow path
    assert q.height == 1
    assert fast.equals(slow)


def test_invalid_utf8_line_is_quarantined_not_the_file(tmp_path):
    data = jsonl(GOOD[:2]).encode() + b'{"id": "7", "title": "caf\xe9"}\n' + jsonl(GOOD[2:]).encode()
    report, records, quarantine = run(tmp_path, data)
    assert report.records == 3
    assert quarantine.row(0, named=True)["line"] == 3
    assert "invalid utf-8" in quarantine.row(0, named=True)["reason"]


def test_declared_encoding_is_transcoded(tmp_path):
    data = jsonl([{"id": "1", "title": "Amélie"}]).encode("latin-1")
    _, records, _ = run(tmp_path, data, encoding="latin-1")
    assert records["name"].to_list() == ["Amélie"]


def test_empty_file_is_reported_not_an_error(tmp_path):
    report, records, quarantine = run(tmp_path, b"")
    assert report.files[0].empty and records.height == 0 and quarantine.height == 0


def test_strict_mode_stops_at_the_first_bad_row_and_writes_nothing(tmp_path):
    with pytest.raises(IngestError, match=r"raw.jsonl:2: field 'year': year: cannot parse 'x'"):
        run(tmp_path, jsonl([GOOD[0], {"id": "2", "title": "T", "year": "x"}]), strict=True)
    assert not (tmp_path / "out" / "records" / "src.parquet").exists()


def test_csv_with_any_delimiter_and_last_first_names(tmp_path):
    data = "id;title;year;cast;born\n1;Knives Out;2019;Craig, Daniel|de Armas, Ana;\n2;Mother;2009;;\n"
    fields = {"name": "title", "year": "year", "cast": {"path": "cast", "split": "|", "name_order": "last_first"}}
    report, records, _ = run(tmp_path, data, fmt="csv", suffix=".csv", delimiter=";", fields=fields)
    assert report.records == 2
    assert records["cast"].to_list() == [["Daniel Craig", "Ana de Armas"], None]
    assert records["line"].to_list() == [2, 3]


def test_csv_wrong_column_count_and_blank_lines_keep_line_numbers(tmp_path):
    data = "id\ttitle\tyear\n1\tA\t2001\n\n2\tB\t2002\textra\n3\tC\tabc\n4\tD\t2004\n"
    fields = {"name": "title", "year": "year"}
    report, records, quarantine = run(tmp_path, data, fmt="csv", suffix=".tsv", delimiter="\t", fields=fields)
    assert records["line"].to_list() == [2, 6]
    assert quarantine.select("line", "field").rows() == [(4, None), (5, "year")]
    assert "expected 3 columns, found 4" in quarantine["reason"][0]
    assert report.rows_in == report.records + report.quarantined == 4


def test_csv_uri_headers_are_shortened(tmp_path):
    data = "id|http://x.org/onto/title|http://x.org/onto/startYear\n0|Heat|1995-01-01\n"
    fields = {"name": "title", "year": "startYear"}
    _, records, _ = run(
        tmp_path, data, fmt="csv", suffix=".csv", delimiter="|", header="uri_last_segment", fields=fields
    )
    assert records.select("name", "year").rows() == [("Heat", 1995)]


def test_json_array_lines_are_record_numbers(tmp_path):
    data = json.dumps([GOOD[0], {"title": "no id"}, GOOD[1]])
    report, records, quarantine = run(tmp_path, data, fmt="json", suffix=".json")
    assert records["line"].to_list() == [1, 3] and quarantine["line"].to_list() == [2]


def test_json_array_with_mixed_shapes_and_non_objects(tmp_path):
    data = json.dumps([{"id": 1, "title": "A", "cast": [{"name": "X"}]}, {"id": "2", "title": "B", "cast": "Y"}, 5])
    report, records, quarantine = run(tmp_path, data, fmt="json", suffix=".json")
    assert records["cast"].to_list() == [["X"], ["Y"]]
    assert quarantine.select("line").to_series().to_list() == [3]


def test_malformed_json_array_names_file_and_line(tmp_path):
    with pytest.raises(IngestError, match=r"raw.json:4: malformed JSON: Expecting value"):
        run(tmp_path, '[\n{"id": "1"},\n{"id": \n', fmt="json", suffix=".json")


def test_missing_file_is_a_clear_error(tmp_path):
    from kg.ingest import ingest_source
    from tests.ingest.helpers import mapping

    with pytest.raises(IngestError, match="nope.jsonl: no such file"):
        ingest_source(mapping(), [tmp_path / "nope.jsonl"], tmp_path / "out")


def test_type_map_and_unknown_values(tmp_path):
    fields = {"name": "title"}
    from kg.ingest import ingest_source, parse_mapping

    m = parse_mapping(
        {
            "source": {"name": "g", "format": "jsonl", "id": "id"},
            "type": {"path": "kind", "map": {"film": "movie", "show": "series"}},
            "fields": fields,
        }
    )
    raw = tmp_path / "g.jsonl"
    raw.write_text(jsonl([{"id": "1", "kind": "film"}, {"id": "2", "kind": "show"}, {"id": "3", "kind": "podcast"}]))
    report = ingest_source(m, [raw], tmp_path / "out")
    records = pl.read_parquet(report.records_path)
    assert records["type"].to_list() == ["movie", "series"]
    q = pl.read_parquet(report.quarantine_path)
    assert q["field"].to_list() == ["type"] and "'podcast'" in q["reason"][0]


def test_on_error_null_keeps_the_row_and_counts(tmp_path):
    fields = {"name": "title", "year": {"path": "year", "on_error": "null"}}
    report, records, _ = run(tmp_path, jsonl([{"id": "1", "title": "A", "year": "n/a"}]), fields=fields)
    assert records["year"].to_list() == [None]
    assert report.nulled_by_field == {"year": 1}


def test_runtime_units_and_list_splitting(tmp_path):
    fields = {
        "runtime_min": {"path": "secs", "unit": "seconds"},
        "genres": {"path": ["genre", "more[]"], "split": ","},
    }
    rows = [{"id": "1", "secs": 5400, "genre": "Drama, Crime", "more": ["Crime", "Thriller"]}]
    _, records, _ = run(tmp_path, jsonl(rows), fields=fields)
    assert records["runtime_min"].to_list() == [90.0]
    assert records["genres"].to_list() == [["Drama", "Crime", "Thriller"]]


def test_iso_dates_read_as_timestamps_come_back_as_text(tmp_path):
    fields = {"name": "title", "aliases": "dates[]", "year": "d"}
    rows = [{"id": "1", "title": "A", "d": "2019-11-27", "dates": ["2019-11-27"]}]
    _, records, _ = run(tmp_path, jsonl(rows), fields=fields)
    assert records.select("year", "aliases").rows() == [(2019, ["2019-11-27"])]
