import pytest

from kg.errors import MappingError
from kg.ingest import load_mapping, parse_mapping


def _base(**over):
    m = {"source": {"name": "s", "format": "jsonl", "id": "id"}, "type": {"default": "movie"}, "fields": {"name": "t"}}
    m.update(over)
    return m


def test_shorthand_and_lists_of_paths():
    m = parse_mapping(_base(fields={"name": "title", "aliases": ["aka[]", "original_title"]}))
    assert m.fields["name"].path == ("title",)
    assert m.fields["aliases"].path == ("aka[]", "original_title")
    assert m.field_parse("name") == "string"


def test_default_parsers_follow_the_record_schema():
    m = parse_mapping(_base(fields={"year": "d", "season": "s", "runtime_min": "r"}))
    assert (m.field_parse("year"), m.field_parse("season"), m.field_parse("runtime_min")) == ("year", "int", "float")


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"fields": {"titel": "t"}}, "unknown record field 'titel'"),
        ({"type": {"default": "film"}}, "type 'film' is not an entity type"),
        ({"fields": {"name": {"path": "t", "split": ","}}}, "split applies to list fields"),
        ({"fields": {"cast": "a[].b[].c"}}, "at most one []"),
        ({"fields": {"year": {"path": "y", "parse": "string"}}}, "numeric field cannot be parsed as string"),
        ({"source": {"name": "s", "format": "xml", "id": "id"}}, "source.format"),
        ({"source": {"name": "s", "format": "csv", "id": "id", "delimiter": ";;"}}, "one character"),
        ({"source": {"name": "s", "format": "csv", "id": "id", "encoding": "nope"}}, "unknown encoding"),
        ({"type": {"path": "kind"}}, "needs a map"),
    ],
)
def test_bad_mappings_name_the_key(over, message):
    with pytest.raises(MappingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_mapping(_base(**over), where="m.toml")


def test_load_mapping_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[source\nname=1")
    with pytest.raises(MappingError, match="bad.toml: not valid TOML"):
        load_mapping(bad)
    with pytest.raises(MappingError, match="missing.toml: cannot read mapping"):
        load_mapping(tmp_path / "missing.toml")
