"""`loopc drift REFERENCE CURRENT`: the monitor's drift engine on two Parquet datasets or a stored profile;
exit 0 no drift, 3 drift, 1 error; the HTML report escapes every value (checked with an HTML parser)."""

from __future__ import annotations

import importlib.util
import json
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from loopc.compiler.cli.main import main as loopc
from loopc.runtime.monitor.profile import build_profile

EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "examples" / "churn"
NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]
HOSTILE = "<script>alert(1)</script>"


def make_table(batch: int, drifted: bool):
    spec = importlib.util.spec_from_file_location("churn_generate", EXAMPLE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.make_table(3000, 42, batch, drifted).select([*NUMERIC, "contract"])
    return table.rename_columns([*NUMERIC, HOSTILE])  # a column name that is markup


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drift")
    for name, batch, drifted in (("reference", 0, False), ("calm", 7, False), ("drifted", 1, True)):
        pq.write_table(make_table(batch, drifted), folder / f"{name}.parquet")
    return folder


def test_same_distribution_exits_0_and_shifted_exits_3(data, capsys):
    assert loopc(["drift", str(data / "reference.parquet"), str(data / "calm.parquet")]) == 0
    assert "no breach" in capsys.readouterr().out
    assert loopc(["drift", str(data / "reference.parquet"), str(data / "drifted.parquet"), "--format", "json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["breach"] and "monthly_charges" in report["drifted"]
    assert set(report["columns"]) == {*NUMERIC, HOSTILE}


def test_columns_limit_what_is_compared(data, capsys):
    code = loopc(["drift", str(data / "reference.parquet"), str(data / "drifted.parquet"), "--columns", "support_calls",
                  "--format", "json", "--p-value", "1e-300", "--psi-max", "10"])
    report = json.loads(capsys.readouterr().out)
    assert list(report["columns"]) == ["support_calls"] and code == 0


def test_a_stored_profile_gives_the_parquet_reference_verdict(data, tmp_path, capsys):
    table = pq.read_table(data / "reference.parquet")
    profile = build_profile(table, {c: {} for c in table.column_names})
    (tmp_path / "profile.json").write_text(json.dumps(profile))
    assert loopc(["drift", str(tmp_path / "profile.json"), str(data / "drifted.parquet"), "--format", "json"]) == 3
    from_profile = json.loads(capsys.readouterr().out)
    loopc(["drift", str(data / "reference.parquet"), str(data / "drifted.parquet"), "--format", "json"])
    assert from_profile["drifted"] == json.loads(capsys.readouterr().out)["drifted"]


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_escapes_names_and_is_well_formed(data, tmp_path):
    out = tmp_path / "report.html"
    assert loopc(["drift", str(data / "reference.parquet"), str(data / "drifted.parquet"), "--format", "html",
                  "-o", str(out)]) == 3
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    assert "script" not in page.tags and page.tags.count("tr") == 1 + len(NUMERIC) + 1
    assert HOSTILE in "".join(page.text)


def test_errors_exit_1_naming_the_problem(data, tmp_path, capsys):
    assert loopc(["drift", str(tmp_path / "missing.parquet"), str(data / "calm.parquet")]) == 1
    assert "missing.parquet" in capsys.readouterr().err
    assert loopc(["drift", str(data / "reference.parquet"), str(data / "calm.parquet"), "--columns", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1]")
    assert loopc(["drift", str(tmp_path / "bad.json"), str(data / "calm.parquet")]) == 1
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(build_profile(pq.read_table(data / "reference.parquet"), {}, None)))
    assert loopc(["drift", str(data / "reference.parquet"), str(profile)]) == 1
    assert "CURRENT is the rows to compare (Parquet or CSV); a profile.json can only be the REFERENCE" in \
        capsys.readouterr().err


def _json_report(args: list[str], capsys) -> tuple[int, dict]:
    code = loopc(["drift", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def csv_data(data, tmp_path_factory):
    """The same three datasets as CSV files, and the drifted one as a folder of CSV files too."""
    import pyarrow.csv as pacsv

    folder = tmp_path_factory.mktemp("drift_csv")
    for name in ("reference", "calm", "drifted"):
        pacsv.write_csv(pq.read_table(data / f"{name}.parquet"), folder / f"{name}.csv")
    table = pq.read_table(data / "drifted.parquet")
    (folder / "parts").mkdir()
    for index, start in enumerate((0, 1000, 2000)):
        pacsv.write_csv(table.slice(start, 1000), folder / "parts" / f"p{index}.txt")
    return folder


def test_csv_files_give_the_report_their_parquet_twins_give(data, csv_data, capsys):
    for current in ("calm", "drifted"):
        expected = _json_report([str(data / "reference.parquet"), str(data / f"{current}.parquet")], capsys)
        assert _json_report([str(csv_data / "reference.csv"), str(csv_data / f"{current}.csv")], capsys) == expected
        assert _json_report([str(data / "reference.parquet"), str(csv_data / f"{current}.csv")], capsys) == expected
    assert expected[0] == 3 and "monthly_charges" in expected[1]["drifted"]


def test_a_stored_profile_reads_a_csv_current_as_the_types_it_recorded(data, csv_data, tmp_path, capsys):
    table = pq.read_table(data / "reference.parquet")
    (tmp_path / "profile.json").write_text(json.dumps(build_profile(table, {c: {} for c in table.column_names})))
    parquet = _json_report([str(tmp_path / "profile.json"), str(data / "drifted.parquet")], capsys)
    assert _json_report([str(tmp_path / "profile.json"), str(csv_data / "drifted.csv")], capsys) == parquet


def test_a_folder_of_csv_files_is_read_with_input_format_csv(csv_data, capsys):
    folder = str(csv_data / "parts")
    assert loopc(["drift", str(csv_data / "reference.csv"), folder]) == 1  # read as Parquet by default
    assert "a folder of CSV files needs --input-format csv" in capsys.readouterr().err
    whole = _json_report([str(csv_data / "reference.csv"), str(csv_data / "drifted.csv")], capsys)
    assert _json_report([str(csv_data / "reference.csv"), folder, "--input-format", "csv"], capsys) == whole


def test_a_csv_column_is_parsed_as_declared_past_the_reader_s_first_block(tmp_path, capsys):
    """Whole numbers for the first MiB, then 2.5 and a null spelling: read as text and parsed, not inferred."""
    lines = "".join(f"{i % 100},a\n" for i in range(300_000))  # about 1.5 MB
    (tmp_path / "ref.csv").write_text("x,c\n" + lines + "2.5,b\nNA,b\n")
    (tmp_path / "cur.csv").write_text("x,c\n" + lines + "2.5,b\n,b\n")
    code, report = _json_report([str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv")], capsys)
    assert code == 0 and report["rows"] == 300_002
    assert report["columns"]["x"]["null_rate"] == report["columns"]["x"]["ref_null_rate"] == 1 / 300_002


def test_a_csv_value_that_cannot_be_read_as_its_column_s_type_names_the_file_the_column_and_the_value(
        csv_data, tmp_path, capsys):
    text = (csv_data / "calm.csv").read_text().splitlines()
    text[-1] = "oops," + text[-1].split(",", 1)[1]  # the last row's first column (tenure_months, numeric)
    (tmp_path / "bad.csv").write_text("\n".join(text) + "\n")
    assert loopc(["drift", str(csv_data / "reference.csv"), str(tmp_path / "bad.csv")]) == 1
    err = capsys.readouterr().err
    assert (f"'{tmp_path / 'bad.csv'}': column 'tenure_months' has 1 value(s) that cannot be read as float "
            "(e.g. 'oops'); declare another type with --columns tenure_months:TYPE") in err
    assert "internal error" not in err and "Traceback" not in err


def test_columns_may_declare_a_type_and_an_unknown_type_is_a_usage_error(csv_data, capsys):
    code, report = _json_report([str(csv_data / "reference.csv"), str(csv_data / "drifted.csv"), "--columns",
                                 "support_calls:category,monthly_charges"], capsys)
    assert code == 3 and report["columns"]["support_calls"]["kind"] == "categorical"
    assert report["columns"]["monthly_charges"]["kind"] == "numeric"
    assert loopc(["drift", str(csv_data / "reference.csv"), str(csv_data / "calm.csv"), "--columns", "x:number"]) == 2
    assert "unknown type 'number'" in capsys.readouterr().err


def test_a_csv_row_with_another_number_of_fields_is_an_error_naming_the_file(csv_data, tmp_path, capsys):
    (tmp_path / "short.csv").write_text((csv_data / "reference.csv").read_text() + "1\n")
    for args in ([str(tmp_path / "short.csv"), str(csv_data / "calm.csv")],  # the reference is counted first
                 [str(csv_data / "reference.csv"), str(tmp_path / "short.csv")]):  # the current is scanned
        assert loopc(["drift", *args]) == 1
        err = capsys.readouterr().err
        assert f"cannot read '{tmp_path / 'short.csv'}'" in err and "Expected" in err and "internal error" not in err


def test_a_missing_path_is_named_as_missing_without_a_folder_hint(data, tmp_path, capsys):
    missing = tmp_path / "nowhere.parquet"
    assert loopc(["drift", str(data / "reference.parquet"), str(missing)]) == 1
    assert capsys.readouterr().err.strip() == f"error: cannot read '{missing}': no such file or folder"


@pytest.mark.parametrize("lacking_first", [False, True])
def test_a_file_lacking_a_compared_column_is_named_not_read_as_nulls(data, tmp_path, capsys, lacking_first):
    folder = tmp_path / "current"
    folder.mkdir()
    calm = pq.read_table(data / "calm.parquet")
    names = ("b", "a") if lacking_first else ("a", "b")  # the dataset's schema is its first file's
    pq.write_table(calm, folder / f"{names[0]}.parquet")
    pq.write_table(calm.drop_columns(["tenure_months"]), folder / f"{names[1]}.parquet")
    assert loopc(["drift", str(data / "reference.parquet"), str(folder)]) == 1
    assert (f"'{folder / names[1]}.parquet' lacks column(s) tenure_months that other files of '{folder}' have"
            in capsys.readouterr().err)
    code, report = _json_report([str(data / "reference.parquet"), str(folder), "--columns", "support_calls"], capsys)
    assert code == 0 and list(report["columns"]) == ["support_calls"] and report["rows"] == 2 * calm.num_rows


def test_typed_rows_keep_a_parquet_dataset_and_reopen_a_csv_one_with_its_columns_as_text(data, csv_data):
    from loopc.compiler.cli.drift import open_rows

    parquet = open_rows(str(data / "reference.parquet"), None, {})
    parquet.file_columns  # footers read once
    assert parquet.typed({"monthly_charges": "float"}) is parquet
    csv = open_rows(str(csv_data / "reference.csv"), None, {})
    typed = csv.typed({"monthly_charges": "float"})
    assert typed is not csv and list(typed.text) == ["monthly_charges"] and typed.fmt == "csv"
