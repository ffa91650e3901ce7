"""Our columns for each kind of landing file: names, types and which are required."""

from __future__ import annotations

from dataclasses import dataclass

ORDER_STATUSES = ("created", "paid", "shipped", "completed", "cancelled", "refunded", "partially_refunded")
EVENT_TYPES = ("content_view", "questionnaire", "campaign", "checkin", "referral", "membership")
MANUAL_TAG_ACTIONS = ("add", "remove")
# external_userid: WeCom's id of an external contact (客户), what WeCom group messaging (群发) takes.
IDENTIFIER_TYPES = ("phone", "unionid", "email", "member_id", "external_userid")
# The levels of the product catalogue a purchase is named by: bought(), cross-sell items.
ITEM_LEVELS = ("category", "subcategory", "sku")
TRUE_WORDS = ("true", "1", "yes", "y", "t", "是")
FALSE_WORDS = ("false", "0", "no", "n", "f", "否")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # text | timestamp | date | amount | integer | boolean | enum | phone | email
    required: bool = False
    accepted: tuple[str, ...] = ()

    @property
    def sql_type(self) -> str:
        return {
            "timestamp": "timestamptz",
            "date": "date",
            "amount": "decimal(18, 2)",
            "integer": "bigint",
            "boolean": "boolean",
        }.get(self.type, "varchar")


IDENTIFIER_COLUMNS = (
    Column("phone", "phone"),
    Column("unionid", "text"),
    Column("email", "email"),
    Column("member_id", "text"),
    Column("external_userid", "text"),
)

KINDS: dict[str, tuple[Column, ...]] = {
    "orders": (
        Column("order_id", "text", required=True),
        Column("created_at", "timestamp", required=True),
        Column("updated_at", "timestamp"),
        Column("paid_at", "timestamp"),
        Column("status", "enum", required=True, accepted=ORDER_STATUSES),
        Column("amount", "amount", required=True),
        Column("refund_amount", "amount"),
        Column("refunded_at", "timestamp"),
        Column("channel", "text"),
        Column("is_gift", "boolean"),
        *IDENTIFIER_COLUMNS,
    ),
    "order_items": (
        Column("order_id", "text", required=True),
        Column("sku", "text", required=True),
        Column("quantity", "integer"),
        Column("price", "amount"),
    ),
    "contacts": (
        *IDENTIFIER_COLUMNS,
        Column("source_channel", "text"),
        Column("signup_at", "timestamp"),
        Column("gender", "text"),
        Column("birthday", "date"),
        Column("city", "text"),
        Column("occupation", "text"),
        Column("life_stage", "text"),
        Column("opted_out", "boolean"),
        Column("marketing_consent", "boolean"),
        Column("updated_at", "timestamp"),
    ),
    "products": (
        Column("sku", "text", required=True),
        Column("product_name", "text"),
        Column("category", "text"),
        Column("subcategory", "text"),
        Column("price_line", "text"),
        Column("list_price", "amount"),
        Column("cycle_days", "integer"),
    ),
    "events": (
        Column("event_type", "enum", required=True, accepted=EVENT_TYPES),
        Column("occurred_at", "timestamp", required=True),
        *IDENTIFIER_COLUMNS,
        Column("topic", "text"),
        Column("duration_seconds", "integer"),
        Column("question", "text"),
        Column("answer", "text"),
        Column("campaign_id", "text"),
        Column("referred_phone", "phone"),
    ),
    "manual_tags": (
        *IDENTIFIER_COLUMNS,
        Column("tag_group", "text", required=True),
        Column("tag", "text", required=True),
        Column("action", "enum", accepted=MANUAL_TAG_ACTIONS),
        Column("operator", "text"),
        Column("tagged_at", "timestamp", required=True),
    ),
}

# Kinds whose rows belong to a person and so must carry at least one identifier.
PERSON_KINDS = ("orders", "contacts", "events", "manual_tags")

LOAD_METADATA = (
    ("_file", "varchar"),
    ("_line", "bigint"),
    ("_batch", "varchar"),
    ("_loaded_at", "timestamptz"),
)


# Kinds keyed by order_id. Ingest gives each order_id an integer _order_key once (raw.order_keys), so
# the build ranks versions and joins lines to orders on an integer instead of the string.
ORDER_KEYED_KINDS = ("orders", "order_items")

ORDER_KEYS_DDL = (
    "create table if not exists raw.order_keys (order_id varchar not null, order_key bigint not null)"
)


# Every identifier value (phone, unionid, email, member_id, external_userid, as normalised at ingest) gets one integer
# id_key, in one key space across the types, and every raw row of a person kind carries the keys of
# its identifiers (`_phone_key`, ...): identity stitching groups and joins on integers instead of
# hashing every (type, value) string twice per build.
IDENTIFIER_KEYS_DDL = (
    "create table if not exists raw.identifier_keys "
    "(id_type varchar not null, id_value varchar not null, id_key bigint not null)"
)


def identifier_key_column(id_type: str) -> str:
    return f"_{id_type}_key"


def raw_table_ddl(kind: str) -> str:
    columns = [f"{column.name} {column.sql_type}" for column in KINDS[kind]]
    columns += [f"{name} {sql_type}" for name, sql_type in LOAD_METADATA]
    if kind in ORDER_KEYED_KINDS:
        columns.append("_order_key bigint")
    if kind in PERSON_KINDS:
        columns += [f"{identifier_key_column(id_type)} bigint" for id_type in IDENTIFIER_TYPES]
    return f"create table if not exists raw.{kind} ({', '.join(columns)})"


# Written in the load's transaction with the raw rows; published as ingest_quarantine.
QUARANTINE_DDL = """
create table if not exists meta.ingest_quarantine (
    file varchar, line bigint, field varchar, value varchar, reason varchar,
    batch varchar, kind varchar, loaded_at timestamptz
)"""

FILES_DDL = """
create table if not exists meta.ingest_files (
    sha256 varchar, kind varchar, file varchar, batch varchar, rows_read bigint,
    rows_loaded bigint, rows_quarantined bigint, loaded_at timestamptz
)"""
