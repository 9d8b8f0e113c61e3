-- Every raw row staging did not keep for a reason other than being an exact duplicate: the raw
-- table, the reason (the first problem found) and the raw values (spec: macros/crm_staging.sql).
{%- set spec = skewless.crm_staging_spec() %}
{% for raw_name, table in spec.items() %}
{{ skewless.rejected_rows(raw_name, ref(raw_name), table['columns']) }}
{% if not loop.last %}union all{% endif %}
{% endfor %}
