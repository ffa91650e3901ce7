"""Identity stitching inside the engine (SQL minimum-label propagation, what Spark runs so that nothing
is collected to the driver) finds the customers scipy's connected components find, with the same
keys: checked on DuckDB, on the generated data (merged identities and junk included) and on the
hand-checked features fixture."""

from __future__ import annotations

from datetime import date

from tests.conftest import load_feature_fixture
from tests.published import published_tables
from transforms.build import build
from transforms.engines.duckdb import DuckDBSession
from transforms.generate import generate
from transforms.ingest import ingest_landing


def test_components_in_sql_give_the_customers_scipy_gives(make_settings, monkeypatch, tmp_path):
    landing = tmp_path / "landing"
    generate(landing, orders=1_500, days=60, last_day=date(2026, 6, 15), seed=5)
    built = {}
    for in_engine in (False, True):
        monkeypatch.setattr(DuckDBSession, "graph_in_engine", in_engine)
        generated = make_settings(
            {"identity": {"max_links_per_identifier": 4}}, name=f"generated_{in_engine}"
        )
        ingest_landing(generated, landing)
        build(generated, date(2026, 6, 15), run_checks=False)
        fixture = make_settings({"identity": {"max_links_per_identifier": 3}}, name=f"fixture_{in_engine}")
        load_feature_fixture(fixture)
        build(fixture, date(2026, 3, 10), run_checks=False)
        built[in_engine] = (published_tables(generated), published_tables(fixture))
    for scipy_tables, sql_tables in zip(built[False], built[True], strict=True):
        assert scipy_tables["customer_identifiers"][1], "nothing stitched: the comparison would prove nothing"
        assert scipy_tables == sql_tables
