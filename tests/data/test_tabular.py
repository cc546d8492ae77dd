from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.data.entities import is_tabular_path as is_tabular
from assay.data.reading import UnreadableTableError, read_table
from assay.data.tablediff import StatShift, TableDiff, diff_tables
from assay.data.tabular import ColumnProfile, Histogram, TableProfile, profile_table
from assay.errors import InvalidArgumentError
from assay.serialize import dump, load


def _column(profile: TableProfile, name: str) -> ColumnProfile:
    column = profile.column(name)
    assert column is not None
    return column


def _diff(old: pd.DataFrame, new: pd.DataFrame) -> TableDiff:
    return diff_tables(old, new, profile_table(old), profile_table(new))


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


# --- is_tabular / read_table ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.csv", True),
        ("raw/DATA.CSV", True),
        ("x.tsv", True),
        ("x.parquet", True),
        ("x.Pq", True),
        ("notes.txt", False),
        ("csv", False),
        ("archive.csv.gz", False),
    ],
)
def test_is_tabular_judges_by_suffix_in_any_case(path: str, expected: bool) -> None:
    assert is_tabular(path) is expected


def test_read_table_reads_csv_bytes_with_pandas_type_inference() -> None:
    df = read_table(b"id,score,name,ok\n1,0.5,ann,True\n2,,bob,False\n", "people.csv")

    assert list(df.columns) == ["id", "score", "name", "ok"]
    assert df["id"].tolist() == [1, 2]
    assert str(df["id"].dtype) == "int64"
    assert str(df["score"].dtype) == "float64"
    assert math.isnan(df["score"][1])
    assert df["name"].tolist() == ["ann", "bob"]
    assert df["ok"].tolist() == [True, False]


def test_read_table_reads_tsv_and_parquet_from_paths(tmp_path: Path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_bytes(b"a\tb\n1\tx,y\n")
    parquet = tmp_path / "t.parquet"
    parquet.write_bytes(_parquet_bytes(pd.DataFrame({"a": [1, 2], "b": ["x", None]})))

    from_tsv = read_table(tsv, "t.tsv")
    from_parquet = read_table(parquet, "t.parquet")

    assert from_tsv.to_dict("list") == {"a": [1], "b": ["x,y"]}
    assert from_parquet["a"].tolist() == [1, 2]
    assert from_parquet["b"].isna().tolist() == [False, True]


def test_read_table_reads_parquet_bytes_under_the_pq_suffix() -> None:
    df = read_table(_parquet_bytes(pd.DataFrame({"v": [1.5, 2.5]})), "part-0.PQ")

    assert df["v"].tolist() == [1.5, 2.5]


def test_parquet_index_written_by_pandas_comes_back_as_a_column() -> None:
    buf = io.BytesIO()
    pd.DataFrame({"id": [7, 9], "v": [1, 2]}).set_index("id").to_parquet(buf)

    df = read_table(buf.getvalue(), "t.parquet")

    assert df.to_dict("list") == {"id": [7, 9], "v": [1, 2]}
    assert df.index.equals(pd.RangeIndex(2))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"a,b\n1,2\n3,4,5\n", "Expected 2 fields in line 3, saw 3"),
        (b"a,b\n1,2,3\n4,5,6\n", "its rows have more fields than its header has names"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, "binary, not text"),
    ],
)
def test_unreadable_csv_raises_its_reason_in_one_line(content: bytes, reason: str) -> None:
    with pytest.raises(UnreadableTableError, match=r"^Cannot read 'bad\.csv' as CSV: ") as info:
        read_table(content, "bad.csv")

    assert reason in info.value.reason
    assert "\n" not in str(info.value)


def test_bytes_that_are_not_parquet_raise_their_reason() -> None:
    with pytest.raises(UnreadableTableError, match=r"Cannot read 'x\.parquet' as Parquet: .*") as i:
        read_table(b"id,name\n1,a\n", "x.parquet")

    assert "\n" not in str(i.value)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_an_empty_table(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.tsv"
    path.write_bytes(content)

    df = read_table(path, "empty.tsv")

    assert df.shape == (0, 0)
    assert profile_table(df).rows == 0


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"city;price;qty\nOslo;1,5;3\nRome;2,25;4\nLima;10,5;1\n", "semicolons.csv"),
        (b"city\tprice\tqty\nOslo\t1.5\t3\nRome\t2.25\t4\nLima\t10.5\t1\n", "tabs.csv"),
        (b"city|price|qty\nOslo|1.5|3\nRome|2.25|4\nLima|10.5|1\n", "pipes.tsv"),
        (b'city,price,qty\n"Oslo; Norway",1.5,3\nRome,2.25,4\nLima,10.5,1\n', "quoted.csv"),
    ],
)
def test_the_separator_is_detected(content: bytes, name: str) -> None:
    df = read_table(content, name)

    assert list(df.columns) == ["city", "price", "qty"]
    assert df["qty"].tolist() == [3, 4, 1]
    assert len(df) == 3


def test_latin_1_text_is_read_in_its_own_encoding() -> None:
    text = "nom;ville;note\nMüller;Zürich;1\nFrançois;Besançon;2\nÅsa;Malmö;3\n"

    df = read_table(text.encode("latin-1"), "people.csv")

    assert df["nom"].tolist() == ["Müller", "François", "Åsa"]
    assert df["ville"].tolist() == ["Zürich", "Besançon", "Malmö"]


def test_latin_1_far_into_a_file_is_found_too() -> None:
    rows = "".join(f"name{i},{i}\n" for i in range(20_000))
    data = ("name,n\n" + rows + "Zoë,1\n").encode("latin-1")

    df = read_table(data, "late.csv")

    assert df["name"].iloc[-1] == "Zoë"
    assert len(df) == 20_001


def test_a_repeated_column_name_is_kept_and_warned_of() -> None:
    from assay.data.reading import load_table

    table = load_table(b"id,score,score,name\n1,2,3,x\n", "t.csv")

    assert list(table.frame.columns) == ["id", "score", "score", "name"]
    assert table.warnings == (
        "Column name 'score' appears 2 times (columns 2, 3); each is profiled, and checks "
        "and diffs see the first.",
    )
    assert [c.name for c in profile_table(table.frame).columns] == ["id", "score", "score", "name"]


def test_a_name_that_only_looks_renamed_is_left_alone() -> None:
    from assay.data.reading import load_table

    table = load_table(b"v,v.1\n1,2\n", "t.csv")

    assert list(table.frame.columns) == ["v", "v.1"]
    assert table.warnings == ()


def test_read_table_rejects_a_name_without_a_tabular_suffix() -> None:
    with pytest.raises(InvalidArgumentError, match=r"'notes\.txt' as a table: its suffix is not"):
        read_table(b"a,b\n", "notes.txt")


# --- profile_table --------------------------------------------------------------------


def test_profile_counts_missing_values_per_column() -> None:
    df = pd.DataFrame(
        {
            "x": [1.0, np.nan, 3.0, np.nan],
            "s": ["a", None, "b", "c"],
            "full": [1, 2, 3, 4],
        }
    )

    profile = profile_table(df)

    assert profile.rows == 4
    assert [c.name for c in profile.columns] == ["x", "s", "full"]
    assert (_column(profile, "x").missing, _column(profile, "x").missing_share) == (2, 0.5)
    assert (_column(profile, "s").missing, _column(profile, "s").missing_share) == (1, 0.25)
    assert (_column(profile, "full").missing, _column(profile, "full").missing_share) == (0, 0.0)


def test_profile_infers_column_types_from_dtypes() -> None:
    many = [f"id-{i}" for i in range(30)]
    df = pd.DataFrame(
        {
            "i": range(30),
            "f": [0.5] * 30,
            "whole_floats": [1.0] * 29 + [np.nan],
            "b": [True, False] * 15,
            "bool_with_gap": pd.Series([True, None] * 15, dtype=object),
            "when": pd.date_range("2024-01-01", periods=30, freq="D"),
            "colour": ["red", "green", "blue"] * 10,
            "cat": pd.Series(["x", "y"] * 15, dtype="category"),
            "id": many,
        }
    )

    types = {c.name: c.type for c in profile_table(df).columns}

    assert types == {
        "i": "integer",
        "f": "float",
        "whole_floats": "float",
        "b": "boolean",
        "bool_with_gap": "boolean",
        "when": "datetime",
        "colour": "categorical",
        "cat": "categorical",
        "id": "text",
    }


def test_string_column_is_categorical_up_to_5_percent_distinct_of_many_rows() -> None:
    rows = 1000
    fifty = pd.DataFrame({"s": [f"v{i % 50}" for i in range(rows)]})
    fifty_one = pd.DataFrame({"s": [f"v{i % 51}" for i in range(rows)]})

    assert _column(profile_table(fifty), "s").type == "categorical"
    assert _column(profile_table(fifty_one), "s").type == "text"


def test_profile_numeric_stats_agree_with_numpy() -> None:
    values = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0])
    df = pd.DataFrame({"v": np.append(values, np.nan)})

    col = _column(profile_table(df), "v")

    assert (col.min, col.max, col.distinct) == (1.0, 9.0, 7)
    assert col.mean == pytest.approx(values.mean())
    assert col.std == pytest.approx(values.std(ddof=1))
    expected = np.percentile(values, [5, 25, 50, 75, 95])
    assert list(col.quantiles) == ["p5", "p25", "p50", "p75", "p95"]
    assert list(col.quantiles.values()) == pytest.approx(list(expected))
    assert col.top == ()
    assert col.histogram is not None
    assert len(col.histogram.edges) == 11
    assert col.histogram.edges[0] == 1.0
    assert col.histogram.edges[-1] == 9.0
    assert col.histogram.counts == tuple(int(c) for c in np.histogram(values, bins=10)[0])
    assert sum(col.histogram.counts) == 11


def test_profile_of_integer_column_keeps_exact_distinct_count() -> None:
    big = 2**62
    df = pd.DataFrame({"n": np.array([big, big + 1, big + 2], dtype=np.int64)})

    col = _column(profile_table(df), "n")

    assert col.type == "integer"
    assert col.distinct == 3  # as float64 all three are the same number
    assert col.histogram is None  # nor can float64 split their span into bins


def test_profile_of_unsigned_integers_beyond_int64() -> None:
    df = pd.DataFrame({"n": np.array([2**63, 2**63 + 10, 5], dtype=np.uint64)})

    col = _column(profile_table(df), "n")

    assert (col.type, col.distinct, col.min, col.max) == ("integer", 3, 5.0, float(2**63 + 10))


def test_profile_top_values_for_categorical_and_boolean_columns() -> None:
    df = pd.DataFrame(
        {
            "colour": ["red"] * 4 + ["blue"] * 3 + ["green", "pink", "teal", "gold"] + [None],
            "flag": [True] * 8 + [False] * 4,
        }
    )

    profile = profile_table(df)
    colour, flag = _column(profile, "colour"), _column(profile, "flag")

    assert colour.type == "categorical"
    assert colour.distinct == 6
    assert colour.top[:2] == (("red", 4), ("blue", 3))
    assert len(colour.top) == 5
    assert (colour.min, colour.mean, colour.quantiles, colour.histogram) == (None, None, {}, None)
    assert flag.top == (("True", 8), ("False", 4))


def test_profile_leaves_infinities_out_of_numeric_stats() -> None:
    df = pd.DataFrame({"v": [1.0, 2.0, np.inf, -np.inf, np.nan]})

    col = _column(profile_table(df), "v")

    assert (col.missing, col.distinct) == (1, 4)
    assert (col.min, col.max, col.mean) == (1.0, 2.0, 1.5)
    assert col.histogram is not None
    assert sum(col.histogram.counts) == 2


def test_profile_of_empty_all_missing_and_single_value_columns_has_no_nan() -> None:
    df = pd.DataFrame(
        {
            "empty": pd.Series([np.nan, np.nan], dtype=np.float64),
            "one": [7, 7],
            "none": pd.Series([None, None], dtype=object),
        }
    )

    profile = profile_table(df)
    text = json.dumps(dump(profile), allow_nan=False)  # raises on NaN or inf

    empty, one = _column(profile, "empty"), _column(profile, "one")
    assert (empty.distinct, empty.min, empty.std, empty.quantiles) == (0, None, None, {})
    assert (one.min, one.max, one.std, one.distinct) == (7.0, 7.0, 0.0, 1)
    assert one.histogram == Histogram(
        edges=tuple(float(e) for e in np.linspace(6.5, 7.5, 11)),
        counts=(0, 0, 0, 0, 0, 2, 0, 0, 0, 0),
    )
    assert _column(profile, "none").missing_share == 1.0
    assert load(TableProfile, json.loads(text)) == profile


def test_profile_of_a_frame_without_rows() -> None:
    profile = profile_table(pd.DataFrame({"a": pd.Series([], dtype=np.int64), "b": []}))

    assert profile.rows == 0
    assert [(c.missing, c.missing_share, c.distinct) for c in profile.columns] == [(0, 0.0, 0)] * 2


def test_profile_round_trips_through_json_exactly() -> None:
    df = pd.DataFrame(
        {
            "x": [0.1, 0.2, 0.3, np.nan],
            "s": ["a", "b", "a", "c"],
            "t": pd.date_range("2024-01-01", periods=4),
        }
    )
    profile = profile_table(df)

    again = load(TableProfile, json.loads(json.dumps(dump(profile), allow_nan=False)))

    assert again == profile
    assert hash(again) == hash(profile)


def test_profile_of_iris_matches_known_statistics() -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    iris: pd.DataFrame = datasets.load_iris(as_frame=True).frame

    profile = profile_table(iris)

    assert profile.rows == 150
    assert [c.type for c in profile.columns] == ["float"] * 4 + ["integer"]
    sepal = _column(profile, "sepal length (cm)")
    assert (sepal.min, sepal.max, sepal.distinct, sepal.missing) == (4.3, 7.9, 35, 0)
    assert sepal.mean == pytest.approx(5.843333, abs=1e-6)
    assert sepal.quantiles["p50"] == 5.8
    target = _column(profile, "target")
    assert (target.min, target.max, target.distinct, target.mean) == (0.0, 2.0, 3, 1.0)
    assert target.histogram is not None
    assert target.histogram.counts[0] == 50


def test_profile_of_a_wide_mixed_table_types_every_column() -> None:
    # Speed is bench/ work; this checks that every kind of column profiles correctly at size.
    rng = np.random.default_rng(0)
    n = 200_000
    df = pd.DataFrame(
        {
            "i": rng.integers(0, 1_000, n),
            "j": rng.integers(0, 10**9, n),
            "f": rng.normal(size=n),
            "g": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
            "h": rng.exponential(size=n),
            "c": rng.choice(np.array(["a", "b", "c", "d"]), n),
            "d": rng.choice(np.array([f"v{i}" for i in range(1000)]), n),
            "t": pd.Series(np.arange(n)).astype(str),
            "b": rng.random(n) < 0.5,
            "ts": pd.date_range("2020-01-01", periods=n, freq="s"),
        }
    )
    profile = profile_table(df)

    assert profile.rows == n
    types = {c.name: c.type for c in profile.columns}
    assert types["t"] == "text"
    assert types["c"] == "categorical"
    assert types["b"] == "boolean"
    assert types["ts"] == "datetime"
    assert types["f"] == "float"
    assert _column(profile, "g").missing == int(df["g"].isna().sum())
    assert _column(profile, "d").distinct == df["d"].nunique()


# --- diff_tables ----------------------------------------------------------------------


def test_diff_counts_duplicate_rows_as_a_multiset() -> None:
    old = pd.DataFrame({"k": [1, 1, 2, 3], "v": ["a", "a", "b", "c"]})
    new = pd.DataFrame({"k": [1, 1, 1, 2, 4], "v": ["a", "a", "a", "b", "d"]})

    diff = _diff(old, new)

    # (1, a): 2 -> 3 is one added; (3, c) removed; (4, d) added.
    assert (diff.rows_old, diff.rows_new, diff.rows_added, diff.rows_removed) == (4, 5, 2, 1)


def test_diff_of_reordered_rows_finds_no_row_changes() -> None:
    old = pd.DataFrame({"k": [1, 2, 3], "v": ["a", "b", "c"]})
    new = old.iloc[::-1].reset_index(drop=True)

    diff = _diff(old, new)

    assert (diff.rows_added, diff.rows_removed, diff.stat_shifts) == (0, 0, ())


def test_diff_reports_added_removed_and_retyped_columns() -> None:
    old = pd.DataFrame({"id": [1, 2], "gone": ["x", "y"], "n": [1, 2]})
    new = pd.DataFrame({"id": [1, 2], "n": ["1", "2"], "fresh": [0.5, 0.5]})

    diff = _diff(old, new)

    assert diff.columns_added == ("fresh",)
    assert diff.columns_removed == ("gone",)
    assert diff.columns_retyped == (("n", "integer", "categorical"),)
    # Over the shared columns (id, n) the rows hold the same values.
    assert (diff.rows_added, diff.rows_removed) == (0, 0)


def test_diff_matches_rows_when_an_integer_column_becomes_float() -> None:
    old = pd.DataFrame({"k": [1, 2, 3]})
    new = pd.DataFrame({"k": [1.0, 2.0, 3.0, np.nan]})

    diff = _diff(old, new)

    assert diff.columns_retyped == (("k", "integer", "float"),)
    assert (diff.rows_added, diff.rows_removed) == (1, 0)


def test_diff_lists_shifts_only_for_stats_that_changed() -> None:
    old = pd.DataFrame({"x": [1.0, 2.0, 3.0], "s": ["a", "b", "c"], "same": [5, 6, 7]})
    new = pd.DataFrame({"x": [1.0, 2.0, 6.0], "s": ["a", "b", None], "same": [5, 6, 7]})

    diff = _diff(old, new)

    shifts = {(s.column, s.stat): (s.old, s.new) for s in diff.stat_shifts}
    assert shifts == {
        ("x", "mean"): (2.0, 3.0),
        ("x", "std"): (1.0, pytest.approx(math.sqrt(7.0))),
        ("x", "max"): (3.0, 6.0),
        ("s", "missing_share"): (0.0, pytest.approx(1 / 3)),
        ("s", "distinct"): (3.0, 2.0),
    }
    assert (diff.rows_added, diff.rows_removed) == (1, 1)


def test_diff_shift_from_a_value_to_none_is_reported() -> None:
    old = pd.DataFrame({"x": [1.0, 2.0]})
    new = pd.DataFrame({"x": [1.0, np.nan]})

    diff = _diff(old, new)

    assert StatShift("x", "std", pytest.approx(math.sqrt(0.5)), None) in diff.stat_shifts  # type: ignore[arg-type]


def test_diff_ignores_float_noise_below_one_part_in_a_billion() -> None:
    old = pd.DataFrame({"x": [0.1, 0.2, 0.3]})
    new = pd.DataFrame({"x": [0.3, 0.2, 0.1]})  # sums in another order

    assert _diff(old, new).stat_shifts == ()


def test_diff_compares_list_cells_from_parquet_by_their_text() -> None:
    old = read_table(_parquet_bytes(pd.DataFrame({"tags": [[1, 2], [3], None]})), "t.parquet")
    new = read_table(_parquet_bytes(pd.DataFrame({"tags": [[1, 2], [4], None]})), "t.parquet")

    diff = _diff(old, new)

    assert (diff.rows_added, diff.rows_removed) == (1, 1)


def test_diff_without_shared_columns_compares_only_row_counts() -> None:
    diff = _diff(pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"b": [1, 2, 3]}))

    assert (diff.rows_added, diff.rows_removed) == (1, 0)
    assert (diff.columns_added, diff.columns_removed) == (("b",), ("a",))


def test_diff_round_trips_through_json_exactly() -> None:
    old = pd.DataFrame({"k": [1, 2], "v": ["a", "b"], "gone": [1, 1]})
    new = pd.DataFrame({"k": [1.5, 2.0], "v": ["a", "c"], "new": [1, 1]})
    diff = _diff(old, new)
    payload: dict[str, Any] = json.loads(json.dumps(dump(diff), allow_nan=False))

    assert load(TableDiff, payload) == diff
    assert payload["columns_retyped"] == [["k", "integer", "float"]]


# --- what a person would notice -------------------------------------------------------


def test_a_mostly_numeric_column_names_its_share_and_odd_values() -> None:
    values = [str(i) for i in range(1, 66)] + ["high"] * 6
    df = read_table(("level\n" + "\n".join(values) + "\n").encode(), "t.csv")

    level = _column(profile_table(df), "level")

    assert level.type == "text"
    assert level.numeric_share == pytest.approx(65 / 71)
    assert level.odd == (("high", 6),)
    assert (level.min, level.max, level.mean) == (1.0, 65.0, 33.0)
    assert level.histogram is not None
    assert sum(level.histogram.counts) == 65
    assert load(TableProfile, dump(profile_table(df))) == profile_table(df)


def test_a_text_column_of_few_numbers_is_plain_text() -> None:
    df = pd.DataFrame({"name": ["ann", "bob", "cid", "7"]})

    name = _column(profile_table(df), "name")

    assert (name.numeric_share, name.odd, name.min) == (None, (), None)


def test_an_all_empty_column_is_typed_empty() -> None:
    df = read_table(b"id,comment,score\n1,,0.5\n2,,\n3,,0.7\n", "t.csv")

    profile = profile_table(df)

    assert _column(profile, "comment").type == "empty"
    assert _column(profile, "comment").missing == 3
    assert _column(profile, "score").type == "float"


def test_long_values_are_kept_short_in_a_profile() -> None:
    df = pd.DataFrame({"note": ["x" * 500, "x" * 500, "y"]})

    top = _column(profile_table(df), "note").top

    assert len(top[0][0]) == 100
    assert top[0][0].endswith("…")


# --- rows paired by key or by value ----------------------------------------------------


def test_rows_are_paired_by_a_key_column_given() -> None:
    old = pd.DataFrame({"sku": ["a", "b", "c", "d"], "price": [1.0, 2.0, 3.0, 4.0]})
    new = pd.DataFrame({"sku": ["b", "a", "c", "e"], "price": [2.0, 1.5, 3.0, 9.0]})

    d = diff_tables(old, new, profile_table(old), profile_table(new), key="sku")

    assert (d.match, d.key) == ("key", "sku")
    assert (d.rows_unchanged, d.rows_changed, d.rows_added, d.rows_removed) == (2, 1, 1, 1)
    assert d.changed_columns == (("price", 1),)
    assert dump(d.examples) == [{"row": "sku=a", "column": "price", "old": "1.0", "new": "1.5"}]
    assert (d.added_rows, d.removed_rows) == (("sku=e",), ("sku=d",))
    assert load(TableDiff, json.loads(json.dumps(dump(d)))) == d


def test_a_unique_id_column_is_the_key_without_asking() -> None:
    old = pd.DataFrame({"customer_id": [1, 2, 3], "plan": ["a", "b", "c"]})
    new = pd.DataFrame({"customer_id": [1, 2, 4], "plan": ["a", "z", "d"]})

    d = _diff(old, new)

    assert (d.match, d.key) == ("key", "customer_id")
    assert (d.rows_unchanged, d.rows_changed, d.rows_added, d.rows_removed) == (1, 1, 1, 1)


def test_a_repeated_id_is_no_key_and_rows_match_by_value() -> None:
    old = pd.DataFrame({"id": [1, 1, 2], "v": [1, 2, 3]})
    new = pd.DataFrame({"id": [1, 1, 2], "v": [1, 2, 4]})

    d = _diff(old, new)

    assert d.key is None
    assert (d.rows_unchanged, d.rows_changed) == (2, 1)


@pytest.mark.parametrize(
    ("key", "message"),
    [("nope", "has no such column"), ("id", "appears more than once in the new version")],
)
def test_a_key_that_is_no_key_is_refused(key: str, message: str) -> None:
    old = pd.DataFrame({"id": [1, 2], "v": [1, 2]})
    new = pd.DataFrame({"id": [1, 1], "v": [1, 2]})

    with pytest.raises(InvalidArgumentError, match=message):
        diff_tables(old, new, profile_table(old), profile_table(new), key=key)


def test_a_rescaled_column_is_a_change_not_every_row_replaced() -> None:
    rng = np.random.default_rng(0)
    old = pd.DataFrame(
        {
            "alcohol": rng.normal(13, 1, 178).round(2),
            "ash": rng.normal(2.4, 0.3, 178).round(2),
            "proline": rng.integers(300, 1700, 178),
        }
    )
    new = old.drop(index=range(0, 178, 15)).reset_index(drop=True)
    new["proline"] = new["proline"] / 1000

    d = _diff(old, new)

    assert (d.rows_old, d.rows_new) == (178, 166)
    assert (d.rows_unchanged, d.rows_changed, d.rows_added, d.rows_removed) == (0, 166, 0, 12)
    assert (d.match, d.ignored, d.changed_columns) == ("columns", ("proline",), (("proline", 166),))
    assert d.examples[0].column == "proline"
    assert d.removed_rows[:2] == ("row 0", "row 15")


def test_without_a_key_equal_rows_are_unchanged_and_the_rest_counted() -> None:
    old = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    new = pd.DataFrame({"a": [1, 9, 8], "b": ["x", "q", "r"]})

    d = _diff(old, new)

    assert d.match == "exact"
    assert (d.rows_unchanged, d.rows_changed, d.rows_added, d.rows_removed) == (1, 0, 2, 2)


def test_missing_values_pair_as_equal() -> None:
    old = pd.DataFrame({"id": ["a", "b"], "v": [np.nan, 1.0]})
    new = pd.DataFrame({"id": ["a", "b"], "v": [np.nan, 2.0]})

    d = _diff(old, new)

    assert (d.rows_unchanged, d.rows_changed) == (1, 1)
    assert dump(d.examples[0]) == {"row": "id=b", "column": "v", "old": "1.0", "new": "2.0"}


def test_decimal_commas_in_a_semicolon_file_are_numbers() -> None:
    df = read_table(b"city;price;code\nOslo;1,5;007\nRome;2,25;1,2,3\nLima;10;x\n", "t.csv")

    assert df["price"].tolist() == [1.5, 2.25, 10.0]
    assert df["code"].tolist() == ["007", "1,2,3", "x"]  # not every value a number: as it was
