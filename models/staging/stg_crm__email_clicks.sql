-- One row per email the lead clicked, at clicked_at: the email's clicks as events of their own,
-- so a feature counts them by when they happened (clicked_at), never by when the email was sent.
select email_id, lead_id, clicked_at
from {{ ref('stg_crm__emails') }}
where clicked_at is not null
