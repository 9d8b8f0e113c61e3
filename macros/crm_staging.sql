{#-
  crm_staging_spec(): what each raw CRM export must hold, column by column (see stage_rows.sql):
  {raw seed: {'model': the staged model, 'distinct': exact duplicates removed, 'columns': spec}}.
  The staged models, stg_crm__rejected_rows, stg_crm__dropped_rows and stg_crm__loads all read
  it, so kept, rejected and counted rows always agree.
-#}
{% macro crm_staging_spec() -%}
  {{ return({
    'raw_leads': {'model': 'stg_crm__leads', 'distinct': true, 'columns': [
        {'name': 'lead_id', 'type': 'bigint', 'min': 1},
        {'name': 'created_at', 'type': 'timestamp', 'event_time': true},
        {'name': 'updated_at', 'type': 'timestamp', 'event_time': true},
        {'name': 'company_size', 'type': 'integer', 'min': 1},
        {'name': 'industry', 'type': 'text', 'lower': true},
        {'name': 'contact_age', 'type': 'integer', 'min': 0, 'max': 150}]},
    'raw_emails': {'model': 'stg_crm__emails', 'distinct': true, 'columns': [
        {'name': 'email_id', 'type': 'bigint'},
        {'name': 'lead_id', 'type': 'bigint', 'min': 1},
        {'name': 'sent_at', 'type': 'timestamp', 'event_time': true},
        {'name': 'kind', 'type': 'text', 'lower': true},
        {'name': 'opened_at', 'type': 'timestamp', 'event_time': true, 'optional': true,
         'not_before': 'sent_at'},
        {'name': 'clicked_at', 'type': 'timestamp', 'event_time': true, 'optional': true,
         'not_before': 'opened_at', 'requires': 'opened_at'}]},
    'raw_web_visits': {'model': 'stg_crm__web_visits', 'distinct': true, 'columns': [
        {'name': 'visit_id', 'type': 'bigint'},
        {'name': 'lead_id', 'type': 'bigint', 'min': 1},
        {'name': 'visited_at', 'type': 'timestamp', 'event_time': true},
        {'name': 'pages', 'type': 'integer', 'min': 0},
        {'name': 'page_path', 'type': 'text', 'prefix': '/'}]},
    'raw_conversions': {'model': 'stg_crm__conversions', 'distinct': true, 'columns': [
        {'name': 'lead_id', 'type': 'bigint', 'min': 1},
        {'name': 'converted_at', 'type': 'timestamp', 'event_time': true}]},
    'raw_scoring_events': {'model': 'stg_crm__scoring_events', 'distinct': true, 'columns': [
        {'name': 'lead_id', 'type': 'bigint', 'min': 1},
        {'name': 'scored_at', 'type': 'timestamp', 'event_time': true},
        {'name': 'converted_within_14d', 'type': 'boolean'}]},
  }) }}
{%- endmacro %}

{#- The staged model of one raw export (the body of models/staging/stg_crm__<entity>.sql). -#}
{% macro crm_staged(raw_name) -%}
  {%- set table = skewless.crm_staging_spec()[raw_name] -%}
  {{ skewless.staged_rows(ref(raw_name), table['columns'], table['distinct']) }}
{%- endmacro %}
