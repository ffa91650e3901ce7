{% macro ref(name) %}{{ name }}{% endmacro %}
{% macro source(name) %}raw_{{ name }}{% endmacro %}
{% macro config() %}{{ kwargs and "" }}{% endmacro %}
{% macro date_before(days) %}date '2025-12-01'{% endmacro %}
{% macro lit(value) %}'{{ value }}'{% endmacro %}
{% macro date_after(days) %}date '2026-01-08'{% endmacro %}
{% macro landed_files(relation) %}select _batch, _file, 0 as line_offset from {{ relation }} group by _batch, _file{% endmacro %}
{% macro record_key(column, kind) %}{{ column }} * 4{% endmacro %}
{% macro version_rank_order(version_at, version_no, cutoff) %}{{ version_at }} desc, {{ version_no }} desc{% endmacro %}
