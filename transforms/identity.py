"""Identity stitching: identifiers that share a record are one person (connected components).

Label propagation in SQL needs one pass per hop of the longest chain; scipy's connected
components over integer-coded identifier pairs does the whole graph at once. A component's
customer_key is derived from its earliest-seen identifier, so keys survive new data, a rerun
gives the same keys, and when two customers merge the older key survives.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from transforms.warehouse import scalar

# A record links each of its identifiers to its smallest one; self-links and repeats add nothing.
EDGES_SQL = """
with usable as (
    select edges.record_kind, edges.record_no, edges.node_id
    from int.int_identity_edges as edges
    left join int.int_identity_junk as junk on edges.node_id = junk.node_id
    where junk.node_id is null
),
rooted as (
    select node_id, min(node_id) over (partition by record_kind, record_no) as record_root from usable
)
select distinct node_id, record_root from rooted where node_id <> record_root
"""

KEYS_SQL = """
with labelled as (
    select nodes.node_id, nodes.id_type, nodes.id_value, nodes.first_seen_at, labels.component
    from int.int_identity_nodes as nodes
    inner join identity_labels as labels on nodes.node_id = labels.node_id
),
representatives as (
    select component, id_type, id_value,
        row_number() over (partition by component order by first_seen_at, id_type, id_value) as seniority
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


def stitch(con: duckdb.DuckDBPyConnection, variables: dict) -> str:
    """The `int_identity` model: one row per usable identifier with its customer_key.

    customer_no (the component number) is the same customer as an integer, for joins inside one
    build; it is never published, because it is not stable across builds as customer_key is.
    """
    node_count = scalar(con, "select count(*) from int.int_identity_nodes")
    # Each array is freed once the next is built: at 100M orders they are GBs each, and this
    # process also holds DuckDB's buffer pool.
    edges = con.sql(EDGES_SQL).fetchnumpy()
    source = np.asarray(edges["node_id"], dtype=np.int64)
    target = np.asarray(edges["record_root"], dtype=np.int64)
    del edges
    graph = coo_matrix(
        (np.ones(len(source), dtype=np.int8), (source, target)), shape=(node_count, node_count)
    ).tocsr()
    del source, target
    _, labels = connected_components(graph, directed=False)
    del graph
    junk = con.sql("select node_id from int.int_identity_junk").fetchnumpy()["node_id"]
    usable = np.ones(node_count, dtype=bool)
    usable[np.asarray(junk, dtype=np.int64)] = False
    node_ids = np.flatnonzero(usable)
    label_table = pa.table({"node_id": pa.array(node_ids), "component": pa.array(labels[node_ids])})
    del labels, node_ids, usable
    # A temp table, not a registered Arrow view: DuckDB can spill it while the keys are joined.
    con.register("identity_labels_arrow", label_table)
    try:
        con.execute("create or replace temp table identity_labels as select * from identity_labels_arrow")
    finally:
        con.unregister("identity_labels_arrow")
    return KEYS_SQL
