-- One row per email: typed exactly, UTC sent_at, opened_at and clicked_at (NULL when it did not
-- happen); exact duplicate exports removed; rows that do not parse exactly, are dated after the
-- load horizon, opened before sent or clicked before (or without) an open are dropped and
-- recorded in stg_crm__rejected_rows (spec: macros/crm_staging.sql).
{{ skewless.crm_staged('raw_emails') }}
