-- One row per converted lead: typed exactly, UTC converted_at; exact duplicate exports removed;
-- rejected rows recorded in stg_crm__rejected_rows (spec: macros/crm_staging.sql).
{{ skewless.crm_staged('raw_conversions') }}
