"""The tag catalog (config/tags.yml) compiled to `customer_tags`, its wide view and its governance report.

Every group of every source becomes one SELECT of (customer_key, tag); the catalog is checked as
a whole when it is loaded, so a bad catalog fails with every error listed before any build step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transforms.errors import SegflowError
from transforms.expressions import compile_expression
from transforms.models import Model
from transforms.rules import Rule, first_match, rule_report_sql
from transforms.segments import load_segment_models
from transforms.settings import Settings, load_yaml
from transforms.sql import literal, ref

SOURCES = ("rules", "bands", "values", "questionnaire", "content", "manual")
TAG_SOURCE_KIND = {
    "rules": "rule",
    "bands": "rule",
    "values": "rule",
    "questionnaire": "questionnaire",
    "content": "content",
    "manual": "manual",
}


@dataclass
class TagGroup:
    category: str
    name: str
    source: str
    multi: bool
    config: dict
    rules: list[Rule] = field(default_factory=list)
    declared_tags: list[str] = field(default_factory=list)  # known before any data is seen


@dataclass
class Catalog:
    path: Path
    groups: list[TagGroup]
    limits: dict
    manual_stale_days: int

    def tags(self) -> set[tuple[str, str]]:
        return {(g.name, t) for g in self.groups for t in g.declared_tags}


def load_catalog(path: Path, known_segments: set[tuple[str, str]] | None = None) -> Catalog:
    document = load_yaml(path)
    if not isinstance(document, dict) or not isinstance(document.get("categories"), list):
        raise SegflowError(f"{path}: expected `categories:`, a list of categories with `groups`")
    errors: list[str] = []
    groups: list[TagGroup] = []
    seen: set[str] = set()
    for category in document["categories"]:
        category_name = str(category.get("name", "")) if isinstance(category, dict) else ""
        if not category_name:
            errors.append(f"{path}: every category needs a `name`")
            continue
        for config in category.get("groups") or []:
            name = str(config.get("name", "")) if isinstance(config, dict) else ""
            where = f"{path} group {name or '(unnamed)'}"
            if not name:
                errors.append(f"{path} category {category_name}: every group needs a `name`")
                continue
            if name in seen:
                errors.append(f"{where}: group name used twice")
            seen.add(name)
            source = config.get("source")
            if source not in SOURCES:
                errors.append(f"{where}: `source` must be one of {', '.join(SOURCES)}")
                continue
            group = TagGroup(category_name, name, source, bool(config.get("multi", False)), config)
            try:
                _check_group(group, where, known_segments)
            except SegflowError as exc:
                errors.append(str(exc))
                continue
            groups.append(group)
    if errors:
        raise SegflowError(f"{len(errors)} error(s) in the tag catalog: " + " | ".join(errors))
    return Catalog(path, groups, document.get("limits") or {}, int(document.get("manual_stale_days", 90)))


def _check_group(group: TagGroup, where: str, known_segments) -> None:
    config = group.config
    problems: list[str] = []
    if group.source == "rules":
        for index, rule in enumerate(config.get("tags") or [], start=1):
            if not isinstance(rule, dict) or "tag" not in rule or "when" not in rule:
                problems.append(f"{where} rule {index}: give `tag` and `when`")
                continue
            try:
                condition = compile_expression(
                    str(rule["when"]), f"{where} tag {rule['tag']}", known_segments=known_segments
                )
            except SegflowError as exc:
                problems.append(str(exc))
                continue
            if condition.tags:
                problems.append(f"{where} tag {rule['tag']}: tag rules cannot use has_tag()")
            group.rules.append(Rule(str(rule["tag"]), str(rule["tag"]), condition))
        if not config.get("tags"):
            problems.append(f"{where}: a rules group needs `tags`")
        group.declared_tags = [r.name for r in group.rules]
    elif group.source in ("bands", "values"):
        feature = config.get("feature")
        try:
            compile_expression(str(feature), f"{where} feature")
        except SegflowError as exc:
            problems.append(str(exc))
        if group.source == "bands":
            bands, labels = config.get("bands"), config.get("labels")
            if (
                not isinstance(bands, list)
                or len(bands) < 2
                or not isinstance(labels, list)
                or len(labels) != len(bands) - 1
            ):
                problems.append(f"{where}: `bands` needs N+1 bounds for N `labels`")
            elif [b for b in bands[:-1] if b is None] or bands[:-1] != sorted(bands[:-1]):
                problems.append(f"{where}: `bands` must ascend; only the last bound may be null (open end)")
            else:
                group.declared_tags = [str(label) for label in labels]
        else:
            group.declared_tags = [str(v) for v in (config.get("labels") or {}).values()]
    elif group.source == "questionnaire":
        if not config.get("question"):
            problems.append(f"{where}: a questionnaire group needs `question`")
        group.declared_tags = [str(v) for v in (config.get("answers") or {}).values()]
    elif group.source == "content":
        topics = config.get("topics")
        if not isinstance(topics, dict) or not topics:
            problems.append(f"{where}: a content group needs `topics: {{topic: tag}}`")
        if not (config.get("min_views") or config.get("min_seconds")):
            problems.append(f"{where}: give `min_views` or `min_seconds`")
        group.declared_tags = [str(v) for v in (topics or {}).values()]
    if problems:
        raise SegflowError(" | ".join(problems))


def _group_select(group: TagGroup, as_of: str, date_before) -> str:
    """SELECT customer_key, tag for one group."""
    features = f"{ref('customer_features')} as f"
    config = group.config
    if group.source == "rules" and not group.multi:
        return (
            f"select customer_key, tag from (select f.customer_key, {first_match(group.rules, None)} as tag "
            f"from {features}) as matched where tag is not null"
        )
    if group.source == "rules":
        return " union all ".join(
            f"select f.customer_key, {literal(r.name)} as tag from {features} where coalesce(({r.condition.sql}), false)"
            for r in group.rules
        )
    if group.source == "bands":
        column = f"f.{config['feature']}"
        bands, labels = config["bands"], config["labels"]
        whens = []
        for low, high, label in zip(bands[:-1], bands[1:], labels, strict=True):
            upper = f" and {column} < {high}" if high is not None else ""
            whens.append(f"when {column} >= {low}{upper} then {literal(label)}")
        return (
            f"select customer_key, tag from (select f.customer_key, case {' '.join(whens)} end as tag "
            f"from {features}) as banded where tag is not null"
        )
    if group.source == "values":
        column = f"f.{config['feature']}"
        labels = config.get("labels") or {}
        renamed = " ".join(f"when {literal(k)} then {literal(v)}" for k, v in labels.items())
        value = f"cast({column} as varchar)"
        tag = f"coalesce(case {value} {renamed} end, {value})" if labels else value
        return f"select f.customer_key, {tag} as tag from {features} where {column} is not null"
    if group.source == "questionnaire":
        answers = config.get("answers") or {}
        tag = (
            "case answer "
            + " ".join(f"when {literal(k)} then {literal(v)}" for k, v in answers.items())
            + " end"
            if answers
            else "answer"
        )
        latest_answers = (
            f"select customer_no, tag from (select customer_no, {tag} as tag, row_number() over ("
            "partition by customer_no order by occurred_at desc, answer) as answer_rank "
            f"from {ref('int_customer_events')} where event_type = 'questionnaire' "
            f"and question = {literal(config['question'])}) as answers where answer_rank = 1 and tag is not null"
        )
        return with_customer_key(latest_answers, "tag")
    if group.source == "content":
        topics = config["topics"]
        renamed = " ".join(f"when {literal(k)} then {literal(v)}" for k, v in topics.items())
        window = int(config.get("window_days", 90))
        threshold = (
            f"count(*) >= {int(config['min_views'])}"
            if config.get("min_views")
            else f"sum(coalesce(duration_seconds, 0)) >= {int(config['min_seconds'])}"
        )
        topic_views = (
            f"select customer_no, case topic {renamed} end as tag from {ref('int_customer_events')} "
            f"where event_type = 'content_view' and event_date >= {date_before(window)} "
            f"and topic in ({', '.join(literal(t) for t in topics)}) group by customer_no, topic having {threshold}"
        )
        return with_customer_key(topic_views, "tag")
    manual_group = literal(config.get("tag_group", group.name))
    return (
        "select customer_key, tag from (select owners.customer_key, manual.tag, manual.action, row_number() over ("
        "partition by owners.customer_key, manual.tag order by manual.tagged_at desc, manual.record_no desc"
        f") as action_rank from {ref('stg_manual_tags')} as manual inner join {ref('int_record_customers')} as owners "
        "on owners.record_kind = 'manual_tag' and manual.record_no = owners.record_no "
        f"where manual.tag_group = {manual_group}) as actions where action_rank = 1 and action = 'add'"
    )


def with_customer_key(by_customer_no: str, column: str) -> str:
    """Rows keyed by customer_no (as int_customer_events is): their customer_key and one column.

    Readers of the events aggregate by customer_no first and join the key here, on fewer rows.
    """
    return (
        f"select customers.customer_key, grouped.{column} from ({by_customer_no}) as grouped "
        f"inner join {ref('int_customers')} as customers on grouped.customer_no = customers.customer_no"
    )


def tag_models(settings: Settings, variables: dict) -> list[Model]:
    catalog = load_settings_catalog(settings)
    as_of = variables["as_of_date"]
    parts = [
        f"select customer_key, {as_of} as as_of_date, {literal(g.category)} as tag_category, {literal(g.name)} as tag_group, "
        f"tag, {literal(TAG_SOURCE_KIND[g.source])} as source from ({_group_select(g, as_of, variables['date_before'])}) "
        "as group_tags"
        for g in catalog.groups
    ]
    tags_sql = "\nunion all\n".join(parts)
    single = [g for g in catalog.groups if not g.multi]
    wide_columns = ", ".join(
        f'max(case when t.tag_group = {literal(g.name)} then t.tag end) as "{g.name}"' for g in single
    )
    wide_sql = (
        f"select f.customer_key, {as_of} as as_of_date, {wide_columns} from {ref('customer_features')} as f "
        f"left join {ref('customer_tags')} as t on f.customer_key = t.customer_key group by f.customer_key"
    )
    return [
        Model(name="customer_tags", layer="marts", sql=tags_sql),
        Model(name="customer_tags_wide", layer="marts", sql=wide_sql),
        Model(
            name="tag_report",
            layer="marts",
            sql=_report_sql(catalog, as_of, variables["date_before"]),
        ),
    ]


def load_settings_catalog(settings: Settings) -> Catalog:
    segments = load_segment_models(settings.config_file("segments.yml"))
    known_segments = {(m.name, s) for m in segments for s, _ in m.segments()}
    return load_catalog(settings.config_file("tags.yml"), known_segments)


def _report_sql(catalog: Catalog, as_of: str, date_before) -> str:
    """Members and coverage per tag, empty tags, overlapping rules, gaps, stale manual tags."""
    declared = [
        f"select {literal(g.category)} as tag_category, {literal(g.name)} as tag_group, {literal(t)} as tag, "
        f"{literal(TAG_SOURCE_KIND[g.source])} as source, {str(g.multi).lower()} as multi_valued"
        for g in catalog.groups
        for t in g.declared_tags
    ]
    declared_sql = " union all ".join(declared) or (
        "select '' as tag_category, '' as tag_group, '' as tag, '' as source, false as multi_valued where false"
    )
    groups = " union all ".join(
        f"select {literal(g.name)} as tag_group, {str(g.multi).lower()} as multi_valued"
        for g in catalog.groups
    )
    overlap_parts = [
        rule_report_sql({"tag_group": g.name}, g.rules, f"{ref('customer_features')} as f", None)
        for g in catalog.groups
        if g.source == "rules" and not g.multi
    ]
    overlaps = " union all ".join(overlap_parts) or (
        "select '' as tag_group, 0 as rule_order, '' as rule, 0 as matching_customers, 0 as taken_by_earlier_rule where false"
    )
    stale_before = date_before(catalog.manual_stale_days)
    return f"""
with customers as (select count(*) as total from {ref("customer_features")}),
held as (
    select tag_category, tag_group, tag, source, count(*) as members
    from {ref("customer_tags")} group by tag_category, tag_group, tag, source
),
catalog_groups as ({groups}),
tags as (
    select coalesce(held.tag_category, declared.tag_category) as tag_category,
        coalesce(held.tag_group, declared.tag_group) as tag_group,
        coalesce(held.tag, declared.tag) as tag,
        coalesce(held.source, declared.source) as source,
        coalesce(held.members, 0) as members
    from held full outer join ({declared_sql}) as declared
        on held.tag_group = declared.tag_group and held.tag = declared.tag
),
group_members as (
    select tag_group, count(distinct customer_key) as group_members from {ref("customer_tags")} group by tag_group
),
rule_overlaps as ({overlaps}),
manual_touch as (
    select tag_group, tag, cast(max(tagged_at) as date) as last_touched_date
    from {ref("stg_manual_tags")} group by tag_group, tag
)
select
    {as_of} as as_of_date,
    tags.tag_category, tags.tag_group, tags.tag, tags.source, catalog_groups.multi_valued,
    tags.members,
    cast(tags.members as double) / nullif(customers.total, 0) as coverage,
    coalesce(group_members.group_members, 0) as group_members,
    cast(coalesce(group_members.group_members, 0) as double) / nullif(customers.total, 0) as group_coverage,
    coalesce(rule_overlap.taken_by_earlier_rule, 0) as overlapping_customers,
    case when not catalog_groups.multi_valued then customers.total - coalesce(group_members.group_members, 0) end
        as customers_without_tag_in_group,
    manual_touch.last_touched_date,
    case
        when tags.members = 0 then 'empty tag'
        when coalesce(rule_overlap.taken_by_earlier_rule, 0) > 0 then 'rule overlaps an earlier rule'
        when manual_touch.last_touched_date < {stale_before} then 'manual tag not touched in {catalog.manual_stale_days} days'
    end as warning
from tags
cross join customers
left join catalog_groups on tags.tag_group = catalog_groups.tag_group
left join group_members on tags.tag_group = group_members.tag_group
left join rule_overlaps as rule_overlap on tags.tag_group = rule_overlap.tag_group and tags.tag = rule_overlap.rule
left join manual_touch on tags.source = 'manual' and tags.tag_group = manual_touch.tag_group and tags.tag = manual_touch.tag
"""


def catalog_report(settings: Settings) -> dict:
    """`segflow tags report`: catalog size against its limits, each tag's coverage and warnings."""
    from transforms.engines import open_warehouse

    catalog = load_settings_catalog(settings)
    with open_warehouse(settings).read() as con:
        rows = con.fetch_dicts(
            "select tag_category, tag_group, tag, source, members, round(coverage, 4) as coverage, "
            "overlapping_customers, customers_without_tag_in_group, last_touched_date, warning "
            "from tag_report order by tag_category, tag_group, members desc, tag, source"
        )
    groups, tags = len(catalog.groups), len(rows)
    max_groups, max_tags = int(catalog.limits.get("max_groups", 30)), int(catalog.limits.get("max_tags", 300))
    warnings = []
    if groups > max_groups:
        warnings.append(
            f"catalog has {groups} groups, more than the limit {max_groups}: merge or retire groups"
        )
    if tags > max_tags:
        warnings.append(f"catalog has {tags} tags, more than the limit {max_tags}: retire one-off tags")
    warnings += [f"{r['tag_group']} / {r['tag']}: {r['warning']}" for r in rows if r["warning"]]
    return {
        "groups": groups,
        "declared_tags": sum(len(g.declared_tags) for g in catalog.groups),
        "tags": tags,
        "max_groups": max_groups,
        "max_tags": max_tags,
        "warnings": warnings,
        "tags_detail": rows,
    }
