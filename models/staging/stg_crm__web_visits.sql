-- One row per web visit: typed exactly, UTC visited_at, the landing page's path; exact duplicate
-- exports removed; rows that do not parse exactly, have pages < 0, a page_path not starting with
-- / or are dated after the load horizon are dropped and recorded in stg_crm__rejected_rows
-- (spec: macros/crm_staging.sql).
{{ skewless.crm_staged('raw_web_visits') }}
