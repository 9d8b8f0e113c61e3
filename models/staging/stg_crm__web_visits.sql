-- One row per web visit: typed exactly, UTC visited_at; exact duplicate exports removed; rows
-- that do not parse exactly, have pages < 0 or are dated after the load horizon are dropped and
-- recorded in stg_crm__rejected_rows (spec: macros/crm_staging.sql).
{{ skewless.crm_staged('raw_web_visits') }}
