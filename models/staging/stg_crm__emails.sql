-- One row per email: typed exactly, UTC sent_at; exact duplicate exports removed; rows that do
-- not parse exactly or are dated after the load horizon are dropped and recorded in
-- stg_crm__rejected_rows (spec: macros/crm_staging.sql).
{{ skewless.crm_staged('raw_emails') }}
