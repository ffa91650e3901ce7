{% macro ref(name) %}{{ name }}{% endmacro %}
{% macro var(name) %}{% if name.endswith('_ts') %}timestamptz '2026-01-01 00:00:00+08:00'{% elif name.endswith('_date') %}date '2026-01-01'{% elif name == 'timezone' %}'Asia/Shanghai'{% else %}1{% endif %}{% endmacro %}
{% macro config() %}{% endmacro %}
