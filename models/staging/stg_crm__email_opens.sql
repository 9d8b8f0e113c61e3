-- One row per email the lead opened, at opened_at: the email's opens as events of their own, so a
-- feature counts them by when they happened (opened_at), never by when the email was sent.
select email_id, lead_id, opened_at
from {{ ref('stg_crm__emails') }}
where opened_at is not null
