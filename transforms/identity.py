"""Identity stitching: identifiers that share a record are one person (connected components).

Label propagation in SQL needs one pass per hop of the longest chain; scipy's connected
components over integer-coded identifier pairs does the whole graph at once. A component's
customer_key is derived from its earliest-seen identifier, so keys survive new data, a rerun
gives the same keys, and when two customers merge the older key survives. A WeCom external_userid
names a customer only when nothing else was seen with it: a brand that starts sending it beside the
unionid keeps the keys its customers would have had without it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from transforms.context import RECORD_KINDS
from transforms.engines import Session
from transforms.errors import SegflowError
from transforms.identifiers import mask, matching_sql
from transforms.identity_rules import do_not_link_rules
from transforms.settings import Settings
from transforms.sql import literal

KEYS_SQL = """
with labelled as (
    select nodes.node_id, nodes.id_type, nodes.id_value, nodes.first_seen_at, labels.component
    from {nodes} as nodes
    inner join identity_labels as labels on nodes.node_id = labels.node_id
),
representatives as (
    select component, id_type, id_value,
        row_number() over (
            partition by component
            order by first_seen_at, id_type = 'external_userid', id_type, id_value
        ) as seniority
    from labelled
)
select labelled.node_id, labelled.id_type, labelled.id_value,
    substr(md5(representatives.id_type || ':' || representatives.id_value), 1, 16) as customer_key,
    cast(labelled.component as bigint) as customer_no,
    labelled.first_seen_at
from labelled
inner join representatives
    on labelled.component = representatives.component and representatives.seniority = 1
"""


RECORD_LABELS_SQL = """
select record_kind, cast(record_no as bigint) as record_no, cast(component as bigint) as customer_no
from identity_record_labels
"""


def _index_dtype(largest: int) -> type:
    # int32 halves the arrays that hold node and record numbers, which are GBs each at scale.
    return np.int32 if largest < np.iinfo(np.int32).max else np.int64


def stitch(con: Session, variables: dict) -> str:
    """The `int_identity` model: one row per usable identifier with its customer_key.

    customer_no (the component number) is the same customer as an integer, for joins inside one
    build; it is never published, because it is not stable across builds as customer_key is.
    Also leaves each record's component in the temp table identity_record_labels, which
    int_record_labels reads.
    """
    if con.graph_in_engine and not variables["identity_pair_rules"]:
        return stitch_in_engine(con, variables)
    relations = variables["relations"]
    nodes, edges, junk = (relations[f"int_identity_{part}"] for part in ("nodes", "edges", "junk"))
    # node_id is the identifier's key from ingest: every identifier ever loaded has one, so the
    # vertex range also covers those first seen after the cut-off, which are not nodes here.
    node_count = int(con.scalar(f"select coalesce(max(node_id), -1) + 1 from {nodes}"))
    node_dtype = _index_dtype(node_count)
    # record_no is dense within a kind (see landed_files_sql), so records index an array directly:
    # kind after kind, each from its record_no. DuckDB computes the index and drops the junk links,
    # so Python holds just two int32 arrays (their size at 100M orders: bench/RESULTS.md).
    kinds = len(RECORD_KINDS)
    slots = np.zeros(kinds, dtype=np.int64)
    for kind, largest in con.execute(
        f"select record_key % {kinds}, max(record_key // {kinds}) from {edges} group by 1"
    ).fetchall():
        slots[kind] = largest + 1
    base = [0, *(int(n) for n in np.cumsum(slots)[:-1])]
    record_index_dtype = _index_dtype(int(slots.sum()))
    record_type = "integer" if record_index_dtype is np.int32 else "bigint"
    bases = " ".join(f"when {kind} then {int(offset)}" for kind, offset in enumerate(base))
    links = con.fetch_numpy(
        f"select cast(case edges.record_key % {kinds} {bases} end + edges.record_key // {kinds} "
        f"as {record_type}) as record_index, "
        f"cast(edges.node_id as {'integer' if node_dtype is np.int32 else 'bigint'}) as node_id "
        f"from {edges} as edges "
        f"where not exists (select 1 from {junk} as junk where junk.node_id = edges.node_id)"
    )
    record_index, node = links["record_index"], links["node_id"]
    del links
    usable = np.zeros(node_count, dtype=bool)
    usable[np.asarray(con.fetch_numpy(f"select node_id from {nodes}")["node_id"], dtype=np.int64)] = True
    junk_nodes = con.fetch_numpy(f"select node_id from {junk}")["node_id"]
    usable[np.asarray(junk_nodes, dtype=np.int64)] = False

    # A record links each of its identifiers to its smallest one: the graph has a vertex per
    # identifier, not per record, and self-links add nothing.
    root = np.full(int(slots.sum()), node_count, dtype=node_dtype)
    np.minimum.at(root, record_index, node)
    record_root = root[record_index]
    # Each array is freed once the next is built: they are GBs each at scale, and this process
    # also holds DuckDB's buffer pool.
    del record_index
    linked = node != record_root
    graph = coo_matrix(
        (np.ones(int(linked.sum()), dtype=np.int8), (node[linked], record_root[linked])),
        shape=(node_count, node_count),
    ).tocsr()
    del node, record_root, linked
    _, labels = connected_components(graph, directed=False)
    del graph
    cut_records = separate_pairs(con, variables, labels, usable)

    node_ids = np.flatnonzero(usable)
    _temp_table(con, "identity_labels", {"node_id": node_ids, "component": labels[node_ids]})
    del node_ids, usable
    # Records whose identifiers are all junk have no root and belong to nobody. DuckDB splits the
    # record index back into kind and number, which in numpy took several times these arrays.
    records = np.flatnonzero(root < node_count).astype(record_index_dtype)
    components = labels[root[records]]
    del root, labels
    if cut_records:
        # A record whose link a rule cut spans two customers: it goes where separate_pairs said.
        cut_index = np.array([base[key % kinds] + key // kinds for key in cut_records], dtype=records.dtype)
        components[np.searchsorted(records, cut_index)] = list(cut_records.values())

    def by_kind(value: Callable[[int, int], object]) -> str:
        # Latest kind first, so a kind without records (its first index equals the next's) is skipped.
        whens = (
            f"when record_index >= {first} then {value(kind, first)}"
            for kind, first in reversed(list(enumerate(base)))
        )
        return f"case {' '.join(whens)} end"

    _temp_table(
        con,
        "identity_record_labels",
        {"record_index": records, "component": components},
        select=f"{by_kind(lambda kind, first: literal(RECORD_KINDS[kind]))} as record_kind, "
        f"record_index - {by_kind(lambda kind, first: first)} as record_no, component",
    )
    return KEYS_SQL.format(nodes=nodes)


def stitch_in_engine(con: Session, variables: dict) -> str:
    """`stitch` where the engine is a cluster (Spark): the components computed in SQL by minimum-label
    propagation with pointer jumping, nothing collected to the driver.

    A record links each of its usable identifiers to its smallest one (its root), as in `stitch`.
    Each round gives every identifier the smallest label among itself and its neighbours, then the
    label of its label (which halves the distance to the component's smallest identifier); rounds
    stop when no label changes. Identity graphs are stars around a customer's records, so a few
    rounds suffice; each round's labels are a table of their own, so the plan never grows.
    A component's number is its smallest node_id (scipy numbers them differently; customer_key,
    what is published, is the same).
    """
    relations = variables["relations"]
    nodes, edges, junk = (relations[f"int_identity_{part}"] for part in ("nodes", "edges", "junk"))
    kinds = len(RECORD_KINDS)
    con.execute(
        "create or replace temp table identity_record_nodes as "
        f"select edges.record_key, edges.node_id from {edges} as edges "
        f"where not exists (select 1 from {junk} as junk where junk.node_id = edges.node_id)"
    )
    con.execute(
        "create or replace temp table identity_record_roots as "
        "select record_key, min(node_id) as root from identity_record_nodes group by record_key"
    )
    con.execute(
        "create or replace temp table identity_links as "
        "select links.node_id, roots.root as other_id from identity_record_nodes as links "
        "inner join identity_record_roots as roots on links.record_key = roots.record_key "
        "where links.node_id <> roots.root "
        "union all select roots.root as node_id, links.node_id as other_id from identity_record_nodes as links "
        "inner join identity_record_roots as roots on links.record_key = roots.record_key "
        "where links.node_id <> roots.root"
    )
    con.execute(
        "create or replace temp table identity_round as "
        "select node_id, least(node_id, min(other_id)) as label from identity_links group by node_id"
    )
    while True:
        con.execute(
            "create or replace temp table identity_next_round as "
            "with hop as (select links.node_id, min(labels.label) as label from identity_links as links "
            "inner join identity_round as labels on links.other_id = labels.node_id group by links.node_id), "
            "stepped as (select labels.node_id, least(labels.label, coalesce(hop.label, labels.label)) as label "
            "from identity_round as labels left join hop on labels.node_id = hop.node_id) "
            "select stepped.node_id, least(stepped.label, jumped.label) as label from stepped "
            "inner join stepped as jumped on stepped.label = jumped.node_id"
        )
        changed = con.scalar(
            "select count(*) from identity_next_round as next_round inner join identity_round as labels "
            "on next_round.node_id = labels.node_id where next_round.label <> labels.label"
        )
        con.execute("drop table identity_round")
        con.execute("create or replace temp table identity_round as select * from identity_next_round")
        con.execute("drop table identity_next_round")
        if not changed:
            break
    con.execute(
        "create or replace temp table identity_labels as "
        "select nodes.node_id, coalesce(labels.label, nodes.node_id) as component "
        f"from {nodes} as nodes left join identity_round as labels on nodes.node_id = labels.node_id "
        f"where not exists (select 1 from {junk} as junk where junk.node_id = nodes.node_id)"
    )
    kind_names = " ".join(f"when {number} then {literal(kind)}" for number, kind in enumerate(RECORD_KINDS))
    con.execute(
        "create or replace temp table identity_record_labels as "
        f"select case roots.record_key % {kinds} {kind_names} end as record_kind, "
        f"roots.record_key // {kinds} as record_no, coalesce(labels.label, roots.root) as component "
        "from identity_record_roots as roots left join identity_round as labels on roots.root = labels.node_id"
    )
    for table in ("identity_record_nodes", "identity_record_roots", "identity_links", "identity_round"):
        con.execute(f"drop table {table}")
    return KEYS_SQL.format(nodes=nodes)


def separate_pairs(con: Session, variables: dict, labels: np.ndarray, usable: np.ndarray) -> dict[int, int]:
    """Honour the do-not-link pairs (identity_rules) that connected components put in one customer.

    Only the components holding both sides of a pair are stitched again, so this is small however
    large the warehouse: their records are replayed in the order they were seen (then record key),
    each linking its identifiers unless that would put both sides of a pair in one group. Earlier
    links win, so the side seen first keeps the identifiers it was linked with before the later
    record that would have joined them. `labels` gets a new component per group; returns the
    component of each record that linked nothing (by record_key): the group of its identifier seen
    last, the one that record most likely introduced (the son's unionid, not the family phone).
    """
    rules = variables["identity_pair_rules"]
    if not rules:
        return {}
    nodes = variables["relations"]["int_identity_nodes"]
    named = {identifier for rule in rules for identifier in rule.identifiers}
    wanted = matching_sql(sorted(named))
    node_of = {
        (id_type, id_value): int(node_id)
        for node_id, id_type, id_value in con.execute(
            f"select node_id, id_type, id_value from {nodes} where {wanted}"
        ).fetchall()
    }
    pairs = [
        (rule, node_of[first], node_of[second])
        for rule in rules
        for first, second in [rule.identifiers]
        if first in node_of and second in node_of and usable[node_of[first]] and usable[node_of[second]]
    ]
    joined = [(rule, a, b) for rule, a, b in pairs if labels[a] == labels[b]]
    if not joined:
        return {}
    affected = np.unique(labels[[a for _, a, _ in joined]])
    members = np.flatnonzero(np.isin(labels, affected) & usable)
    _temp_table(con, "identity_separated_nodes", {"node_id": members})
    links = con.fetch_numpy(
        f"select records.record_key, records.node_id, records.seen_at "
        f"from {variables['relations']['int_identity_records']} as records "
        "inner join identity_separated_nodes as separated on records.node_id = separated.node_id "
        "order by records.seen_at, records.record_key, records.node_id"
    )
    con.execute("drop table if exists identity_separated_nodes")

    parent = {int(node): int(node) for node in members}

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    # The pair sides each group holds: a record may not join a group holding one side of a pair
    # with a group holding the other.
    sides: dict[int, set[tuple[int, int]]] = {}
    for rule, a, b in joined:
        sides.setdefault(a, set()).add((rule.number, 0))
        sides.setdefault(b, set()).add((rule.number, 1))
    first_seen: dict[int, object] = {}
    record_nodes: dict[int, list[int]] = {}
    for record_key, node, seen_at in zip(
        links["record_key"].tolist(), links["node_id"].tolist(), links["seen_at"].tolist(), strict=True
    ):
        record_nodes.setdefault(record_key, []).append(node)
        first_seen.setdefault(node, seen_at)  # rows come in seen order
    cut: list[int] = []
    for record_key, record in record_nodes.items():  # in seen order: dicts keep insertion order
        roots = {find(node) for node in record}
        held = set().union(*(sides.get(root, set()) for root in roots))
        if any((number, 1 - side) in held for number, side in held):
            cut.append(record_key)
            continue
        survivor, *others = sorted(roots)
        for other in others:
            parent[other] = survivor
        sides[survivor] = held
    fresh = int(labels.max()) + 1
    group_label: dict[int, int] = {}
    for node in members.tolist():
        labels[node] = group_label.setdefault(find(node), fresh + len(group_label))
    return {
        record_key: int(labels[max(record_nodes[record_key], key=lambda node: (first_seen[node], node))])
        for record_key in cut
    }


def unseen_rule_identifiers(con: Session, settings: Settings) -> list[str]:
    """A warning per do-not-link identifier never loaded: the rule waits for it, it is no error."""
    rules = do_not_link_rules(settings)
    named = sorted({identifier for rule in rules for identifier in rule.identifiers})
    if not named:
        return []
    wanted = matching_sql(named)
    seen = {
        tuple(row)
        for row in con.execute(f"select id_type, id_value from raw.identifier_keys where {wanted}").fetchall()
    }
    return [
        f"{settings.config_dir / 'settings.yml'}: {rule.label} names {id_type} {mask(id_type, id_value)}, "
        "which no loaded record carries; the rule cuts nothing until one does"
        for rule in rules
        for id_type, id_value in rule.identifiers
        if (id_type, id_value) not in seen
    ]


def record_labels(con: Session, variables: dict) -> str:
    """The `int_record_labels` model: the customer_no of every record that carries a usable identifier."""
    if not con.temp_table_exists("identity_record_labels"):
        # The stitch leaves the labels in its connection, from graph tables that live only there.
        raise SegflowError("int_record_labels is built with int_identity: run the whole identity step")
    return RECORD_LABELS_SQL


def _temp_table(con: Session, name: str, columns: dict[str, np.ndarray], select: str = "*") -> None:
    """A temp table, not a registered Arrow view: DuckDB can spill it while it is joined."""
    con.load_temp_table(name, pa.table({k: pa.array(v) for k, v in columns.items()}), select)
