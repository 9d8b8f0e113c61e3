-- The label spine: each time an open lead was scored, and whether it converted within 14 days.
-- Exact duplicate label rows are removed (and counted in stg_crm__dropped_rows): a duplicate
-- export must not add training rows. Rejected rows are recorded in stg_crm__rejected_rows.
{{ skewless.crm_staged('raw_scoring_events') }}
