"""Segment models from config/segments.yml, compiled to the `customer_segments` table.

Exactly one row per customer and model. A bad file fails when it is loaded, with every error
listed, before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transforms.errors import SegflowError
from transforms.expressions import compile_expression
from transforms.models import Model
from transforms.rules import Rule, first_match, rule_report_sql
from transforms.settings import Settings, load_yaml
from transforms.sql import literal, ref

RFM8_SEGMENTS = {
    (True, True, True): ("important_value", "重要价值"),
    (True, False, True): ("important_development", "重要发展"),
    (False, True, True): ("important_keep", "重要保持"),
    (False, False, True): ("important_winback", "重要挽留"),
    (True, True, False): ("general_value", "一般价值"),
    (True, False, False): ("general_development", "一般发展"),
    (False, True, False): ("general_keep", "一般保持"),
    (False, False, False): ("general_winback", "一般挽留"),
}
ABC_LABELS = {"A": "A类(贡献主要收入)", "B": "B类", "C": "C类"}
NO_ORDERS = ("no_orders", "未购买")
SCORE_COLUMNS = ("r_score", "f_score", "m_score")
RFM_INPUTS = {"recency_days": "r_score", "order_count": "f_score", "total_spend": "m_score"}
MODEL_TYPES = ("rules", "rfm", "rfm8", "abc")


@dataclass
class SegmentModel:
    name: str
    label: str
    type: str
    config: dict
    rules: list[Rule] = field(default_factory=list)
    otherwise: tuple[str, str] | None = None

    def segments(self) -> list[tuple[str, str]]:
        """Every (segment, label) the model can give, in the order reports and BI list them:
        the model's `order` (or a funnel's `stages`) where given, else the order of its rules."""
        if self.type == "rfm8":
            return [*RFM8_SEGMENTS.values(), NO_ORDERS]
        if self.type == "abc":
            return list(ABC_LABELS.items())
        found = [(r.name, r.label) for r in self.rules]
        if self.otherwise and self.otherwise[0] not in dict(found):
            found.append(self.otherwise)
        listed = self.display_order()
        if listed:
            rank = {segment: index for index, segment in enumerate(listed)}
            found.sort(key=lambda pair: rank.get(pair[0], len(rank)))
        return found

    def display_order(self) -> list[str]:
        return [str(s) for s in (self.config.get("order") or self.config.get("stages") or [])]


def load_segment_models(path: Path) -> list[SegmentModel]:
    document = load_yaml(path)
    models_config = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models_config, dict) or not models_config:
        raise SegflowError(f"{path}: expected `models:` with at least one model")
    errors: list[str] = []
    models: list[SegmentModel] = []
    for name, config in models_config.items():
        where = f"{path} model {name}"
        if not isinstance(config, dict) or config.get("type") not in MODEL_TYPES:
            errors.append(f"{where}: `type` must be one of {', '.join(MODEL_TYPES)}")
            continue
        model = SegmentModel(
            name=str(name), label=str(config.get("label", name)), type=config["type"], config=config
        )
        if model.type in ("rules", "rfm"):
            columns = SCORE_COLUMNS if model.type == "rfm" else None
            for index, rule in enumerate(config.get("rules") or [], start=1):
                if not isinstance(rule, dict) or "segment" not in rule or "when" not in rule:
                    errors.append(f"{where} rule {index}: give `segment` and `when`")
                    continue
                try:
                    condition = compile_expression(
                        str(rule["when"]), f"{where} segment {rule['segment']}", columns=columns
                    )
                except SegflowError as exc:
                    errors.append(str(exc))
                    continue
                model.rules.append(
                    Rule(str(rule["segment"]), str(rule.get("label", rule["segment"])), condition)
                )
            if not config.get("rules"):
                errors.append(f"{where}: a {model.type} model needs `rules`")
            otherwise = config.get("otherwise") or {}
            model.otherwise = (str(otherwise.get("segment", "other")), str(otherwise.get("label", "其他")))
            if any(r.condition.segments for r in model.rules):
                errors.append(f"{where}: segment rules cannot use in_segment(); build on features instead")
            if any(r.condition.tags for r in model.rules):
                errors.append(f"{where}: segment rules cannot use has_tag() (tags are built from segments)")
        listed = model.display_order()
        known = {segment for segment, _ in model.segments()} if model.type in ("rules", "rfm") else set()
        unknown = [segment for segment in listed if known and segment not in known]
        if unknown:
            errors.append(f"{where}: `order` names segment(s) no rule gives: {', '.join(unknown)}")
        if model.type == "rfm" and config.get("scoring", "quintiles") == "breakpoints":
            breakpoints = config.get("breakpoints") or {}
            for feature in RFM_INPUTS:
                points = breakpoints.get(feature)
                if not isinstance(points, list) or len(points) != 4 or points != sorted(points):
                    errors.append(f"{where}: breakpoints.{feature} must be 4 ascending numbers")
        if model.type == "abc":
            a, b = config.get("a_share", 0.8), config.get("b_share", 0.95)
            if not (0 < a < b <= 1):
                errors.append(f"{where}: need 0 < a_share < b_share <= 1")
        models.append(model)
    if errors:
        raise SegflowError(f"{len(errors)} error(s) in segments: " + " | ".join(errors))
    return models


def _score(column: str, score: str, config: dict) -> str:
    """Score 1-5; ties share a score. Recency scores high when small, the others when large."""
    if config.get("scoring", "quintiles") == "breakpoints":
        points = config["breakpoints"][column]
        if column == "recency_days":
            cases = " ".join(f"when {column} <= {p} then {5 - i}" for i, p in enumerate(points))
            return f"case {cases} else 1 end as {score}"
        cases = " ".join(f"when {column} <= {p} then {i + 1}" for i, p in enumerate(points))
        return f"case {cases} else 5 end as {score}"
    # Customers are lined up worst first. A tie takes the score of its first place in the line, so
    # the many single-order buyers share F=1; but the tie at the best end (everyone who ordered
    # yesterday) takes 5, or it would score by its first place and leave 5 empty.
    worst_first = f"order by {column} {'desc' if column == 'recency_days' else 'asc'}"
    return (
        f"case when count(*) over ({worst_first}) = count(*) over () then 5 "
        f"else least(5, 1 + cast(floor(5.0 * (rank() over ({worst_first}) - 1) "
        f"/ count(*) over ()) as integer)) end as {score}"
    )


def _model_sql(model: SegmentModel, as_of_date: str) -> str:
    head = f"f.customer_key, {as_of_date} as as_of_date, {literal(model.name)} as model"
    no_scores = (
        "cast(null as integer) as r_score, cast(null as integer) as f_score, cast(null as integer) as m_score"
    )
    if model.type == "rules":
        segment = first_match(model.rules, model.otherwise[0])
        label = first_match(model.rules, model.otherwise[1], "label")
        return f"select {head}, {segment} as segment, {label} as segment_label, {no_scores} from {ref('customer_features')} as f"
    if model.type == "rfm":
        scores = ", ".join(_score(column, score, model.config) for column, score in RFM_INPUTS.items())
        segment = first_match(model.rules, model.otherwise[0])
        label = first_match(model.rules, model.otherwise[1], "label")
        return (
            f"select base.customer_key, {as_of_date} as as_of_date, {literal(model.name)} as model, "
            f"case when f.customer_key is null then {literal(model.otherwise[0])} else {segment} end as segment, "
            f"case when f.customer_key is null then {literal(model.otherwise[1])} else {label} end as segment_label, "
            "f.r_score, f.f_score, f.m_score "
            f"from {ref('customer_features')} as base left join ("
            f"select customer_key, {scores} from {ref('customer_features')} where order_count > 0"
            ") as f on base.customer_key = f.customer_key"
        )
    if model.type == "rfm8":

        def condition(flags: tuple[bool, bool, bool]) -> str:
            return " and ".join(
                ("" if high else "not ") + column
                for high, column in zip(flags, ("f.r_high", "f.f_high", "f.m_high"), strict=True)
            )

        segment = (
            f"case when f.order_count = 0 then {literal(NO_ORDERS[0])} "
            + " ".join(
                f"when {condition(flags)} then {literal(name)}" for flags, (name, _) in RFM8_SEGMENTS.items()
            )
            + " end"
        )
        label = (
            f"case when f.order_count = 0 then {literal(NO_ORDERS[1])} "
            + " ".join(
                f"when {condition(flags)} then {literal(text)}" for flags, (_, text) in RFM8_SEGMENTS.items()
            )
            + " end"
        )
        return (
            f"select {head}, {segment} as segment, {label} as segment_label, {no_scores} from ("
            "select features.customer_key, features.order_count, "
            "features.recency_days < averages.recency as r_high, "
            "features.order_count > averages.frequency as f_high, "
            "features.total_spend > averages.monetary as m_high "
            f"from {ref('customer_features')} as features cross join ("
            "select avg(recency_days) as recency, avg(order_count) as frequency, avg(total_spend) as monetary "
            f"from {ref('customer_features')} where order_count > 0) as averages"
            ") as f"
        )
    a_share, b_share = float(model.config.get("a_share", 0.8)), float(model.config.get("b_share", 0.95))
    klass = (
        f"case when f.total_spend > 0 and f.spend_before < {a_share} * f.overall then 'A' "
        f"when f.total_spend > 0 and f.spend_before < {b_share} * f.overall then 'B' else 'C' end"
    )
    label = (
        "case "
        + " ".join(f"when {klass} = {literal(k)} then {literal(v)}" for k, v in ABC_LABELS.items())
        + " end"
    )
    return (
        f"select {head}, {klass} as segment, {label} as segment_label, {no_scores} from ("
        "select customer_key, total_spend, "
        "sum(total_spend) over (order by total_spend desc, customer_key rows between unbounded preceding and current row)"
        f" - total_spend as spend_before, sum(total_spend) over () as overall from {ref('customer_features')}) as f"
    )


def segment_models(settings: Settings, variables: dict) -> list[Model]:
    models = load_segment_models(settings.config_file("segments.yml"))
    as_of_date = variables["as_of_date"]
    union = "\nunion all\n".join(_model_sql(m, as_of_date) for m in models)
    reports = [
        rule_report_sql(
            {"model": m.name},
            m.rules,
            f"{ref('customer_features')} as f" if m.type == "rules" else _rfm_scored(m),
            m.otherwise[0],
        )
        for m in models
        if m.type in ("rules", "rfm")
    ]
    report_sql = f"select {as_of_date} as as_of_date, * from ({' union all '.join(reports)}) as report"
    return [
        Model(name="customer_segments", layer="marts", sql=union),
        Model(name="segment_catalog", layer="marts", sql=segment_catalog_sql(models)),
        Model(name="segment_rule_report", layer="marts", sql=report_sql),
    ]


def segment_catalog_sql(models: list[SegmentModel]) -> str:
    """One row per model and segment it can give: labels and the order to list them in (BI sorts
    funnel stages and lifecycle stages by segment_order without reading the YAML)."""
    rows = [
        f"select {literal(model.name)} as model, {literal(model.label)} as model_label, {order} as model_order, "
        f"{literal(segment)} as segment, {literal(label)} as segment_label, {position} as segment_order"
        for order, model in enumerate(models, start=1)
        for position, (segment, label) in enumerate(model.segments(), start=1)
    ]
    return " union all ".join(rows)


def _rfm_scored(model: SegmentModel) -> str:
    scores = ", ".join(_score(column, score, model.config) for column, score in RFM_INPUTS.items())
    return f"(select customer_key, {scores} from {ref('customer_features')} where order_count > 0) as f"
