-- One row per lead version: typed exactly, UTC timestamps, exact duplicate exports removed.
-- A late correction is a second version of the same lead with a later updated_at; both
-- versions are kept (feature views pick by availability). Rows with a value that is not
-- exactly of its type or outside its domain (company_size >= 1, contact_age 0..150), or dated
-- after the load horizon, are dropped and recorded in stg_crm__rejected_rows (spec:
-- macros/crm_staging.sql).
{{ skewless.crm_staged('raw_leads') }}
