"""Integer keys for order ids and identifiers (raw.order_keys, raw.identifier_keys), given once and never changed; the raw tables and their migrations."""

from __future__ import annotations

from transforms.engines import Session
from transforms.schema import (
    FILES_DDL,
    IDENTIFIER_KEYS_DDL,
    IDENTIFIER_TYPES,
    KINDS,
    ORDER_KEYED_KINDS,
    ORDER_KEYS_DDL,
    PERSON_KINDS,
    QUARANTINE_DDL,
    identifier_key_column,
    raw_table_ddl,
)
from transforms.sql import literal


def assign_keys(
    con: Session,
    keys_table: str,
    natural_key: tuple[str, ...],
    key: str,
    landed_sql: str,
    landed_keys: str,
    distinct_table: str | None = None,
) -> None:
    """Give the natural keys of `landed_sql` not seen before the next integer keys of `keys_table`,
    in natural-key order (so loading the same files into a new warehouse numbers them alike), and
    leave every landed natural key with its key in the temp table `landed_keys`. A key never changes
    once given. `distinct_table` names a temp table already holding the distinct natural keys
    (handed over from the staging session), used instead of `landed_sql`.

    Rows look their keys up in `landed_keys`, not `keys_table`: a lookup table sized by the batch,
    not by every key ever given, which grows with every month loaded."""
    columns = ", ".join(natural_key)
    same_key = " and ".join(f"given.{column} = landed.{column}" for column in natural_key)
    landed = distinct_table or "landed_natural_keys"
    if not distinct_table:
        con.execute(f"create or replace temp table {landed} as select distinct {columns} from ({landed_sql})")
    con.execute(
        f"insert into {keys_table} "
        f"select {columns}, (select coalesce(max({key}), 0) from {keys_table}) + row_number() over (order by {columns}) "
        f"from {landed} as landed where not exists (select 1 from {keys_table} as given where {same_key})"
    )
    con.execute(
        f"create or replace temp table {landed_keys} as "
        f"select {columns}, {key} from {keys_table} as given "
        f"where exists (select 1 from {landed} as landed where {same_key})"
    )
    con.execute(f"drop table {landed}")


def key_orders(con: Session, order_ids_sql: str, distinct_table: str | None = None) -> None:
    """Order keys for the order_ids of some rows, left in the temp table landed_order_keys."""
    assign_keys(
        con, "raw.order_keys", ("order_id",), "order_key", order_ids_sql, "landed_order_keys", distinct_table
    )


def identifier_values_sql(rows_sql: str) -> str:
    """Every (id_type, id_value) of some rows of a person kind, one row per identifier present."""
    return " union all ".join(
        f"select {literal(id_type)} as id_type, {id_type} as id_value from ({rows_sql}) where {id_type} is not null"
        for id_type in IDENTIFIER_TYPES
    )


def key_identifiers(con: Session, rows_sql: str, distinct_table: str | None = None) -> None:
    """Identifier keys for the identifiers of some rows, left in the temp table landed_identifier_keys."""
    assign_keys(
        con,
        "raw.identifier_keys",
        ("id_type", "id_value"),
        "id_key",
        identifier_values_sql(rows_sql),
        "landed_identifier_keys",
        distinct_table,
    )


def ensure_raw_tables(con: Session) -> None:
    for kind in KINDS:
        con.execute(raw_table_ddl(kind))
    add_new_columns(con)
    con.execute(ORDER_KEYS_DDL)
    add_order_keys(con)
    con.execute(IDENTIFIER_KEYS_DDL)
    add_identifier_keys(con)
    if not con.table_exists("meta", "ingest_quarantine") and con.table_exists("pub", "ingest_quarantine"):
        # kept in the published schema by an older segflow
        con.execute("create table meta.ingest_quarantine as select * from pub.ingest_quarantine")
    con.execute(QUARANTINE_DDL)
    con.execute(FILES_DDL)


def publish_quarantine(con: Session) -> None:
    """pub.ingest_quarantine as the loads left it (the load's transaction writes only the work tables)."""
    con.execute(
        "create or replace table pub.ingest_quarantine as select * from meta.ingest_quarantine "
        "order by loaded_at, file, line, field"
    )


def raw_tables_without(con: Session, kinds: tuple[str, ...], column: str) -> list[str]:
    """The raw tables of these kinds that lack a column (a warehouse loaded by an older version)."""
    return [kind for kind in kinds if column not in con.columns(f"raw.{kind}")]


def add_order_keys(con: Session) -> None:
    """Number the orders of a warehouse loaded before raw tables had order keys, once."""
    missing = raw_tables_without(con, ORDER_KEYED_KINDS, "_order_key")
    if not missing:
        return
    with con.transaction():
        for kind in missing:
            con.execute(f"alter table raw.{kind} add column _order_key bigint")
        key_orders(con, " union all ".join(f"select order_id from raw.{kind}" for kind in ORDER_KEYED_KINDS))
        for kind in missing:
            con.execute(
                f"update raw.{kind} set _order_key = order_keys.order_key from landed_order_keys as order_keys "
                f"where raw.{kind}.order_id = order_keys.order_id"
            )
        con.execute("drop table landed_order_keys")


def add_identifier_keys(con: Session) -> None:
    """Key the identifiers of a warehouse loaded before raw tables had identifier keys (or a key
    for every identifier type), once."""
    missing: dict[str, list[str]] = {}
    for id_type in IDENTIFIER_TYPES:
        for kind in raw_tables_without(con, PERSON_KINDS, identifier_key_column(id_type)):
            missing.setdefault(kind, []).append(id_type)
    if not missing:
        return
    with con.transaction():
        for kind, id_types in missing.items():
            for id_type in id_types:
                con.execute(f"alter table raw.{kind} add column {identifier_key_column(id_type)} bigint")
        key_identifiers(
            con,
            " union all ".join(f"select {', '.join(IDENTIFIER_TYPES)} from raw.{kind}" for kind in missing),
        )
        for kind, id_types in missing.items():
            for id_type in id_types:
                con.execute(
                    f"update raw.{kind} set {identifier_key_column(id_type)} = keys.id_key "
                    f"from landed_identifier_keys as keys where keys.id_type = {literal(id_type)} "
                    f"and keys.id_value = raw.{kind}.{id_type}"
                )
        con.execute("drop table landed_identifier_keys")


def add_new_columns(con: Session) -> None:
    """Columns our kinds gained since a warehouse's raw tables were created (external_userid):
    empty in the rows loaded before."""
    for kind, columns in KINDS.items():
        present = set(con.columns(f"raw.{kind}"))
        for column in columns:
            if column.name not in present:
                con.execute(f"alter table raw.{kind} add column {column.name} {column.sql_type}")
