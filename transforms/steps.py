"""The build's steps in order, and which step builds each model: the one list the CLI, the
customer DAG (one task per step), the benchmark and the tests read.

A model's layer is its folder (staging, intermediate, marts); its step is when it runs. Staging
models run in the staging step, a model with `config(step='publish')` (the histories and change
logs) only after the checks pass, and every other model in the step that names it below: a model
named nowhere is an error, not a silent guess.
"""

from __future__ import annotations

from transforms.errors import SegflowError

STEPS = ("staging", "identity", "features", "segments", "tags", "insights", "checks", "publish")
MODEL_STEPS = {
    "identity": (
        "int_identity_records",
        "int_identity_nodes",
        "int_identity_edges",
        "int_identity_junk",
        "int_identity",
        "int_record_labels",
        "int_record_customers",
        "customer_identifiers",
        "identity_junk_identifiers",
    ),
    "features": (
        "int_customers",
        "int_customer_orders",
        "int_customer_items",
        "int_customer_events",
        "int_customer_order_features",
        "int_customer_item_features",
        "customer_features",
        "customer_monthly_spend",
        "customer_content_engagement",
        "customer_purchased_items",
        "category_affinity",
    ),
    "segments": ("customer_segments", "segment_catalog", "segment_rule_report", "segment_summary"),
    "tags": ("customer_tags", "customer_tags_wide", "tag_report"),
    "insights": (
        "action_anniversaries",
        "action_birthdays",
        "action_checkin_routing",
        "action_cross_sell",
        "action_high_value_at_risk",
        "action_replenishment_due",
        "channel_conversion",
        "cohort_retention",
        "customer_daily_spend",
        "funnel_summary",
    ),
}


def step_of(name: str, layer: str, configured: str | None = None) -> str:
    """Which step builds the model `name` of folder `layer` (with its config(step=...), if any)."""
    if configured is not None:
        if configured not in STEPS:
            raise SegflowError(
                f"model {name}: config(step='{configured}') is not a step; steps are {', '.join(STEPS)}"
            )
        return configured
    if layer == "staging":
        return "staging"
    for step, names in MODEL_STEPS.items():
        if name in names:
            return step
    raise SegflowError(
        f"model {name} belongs to no build step: name it under MODEL_STEPS in transforms/steps.py "
        "or give it config(step=...)"
    )
