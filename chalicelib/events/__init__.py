"""Change events (#17): every change to a contact or a note, derived from the table streams.

- derive: a stream record of a contact or note → the event (pure, but for who deleted).
- audit: the sink the contacts' and notes' stream consumers write (the audit log, append-only),
  and the reads behind GET /audit and GET /contacts/{id}/history.
The audit table's own stream is the outbox the other sinks read: webhooks
(chalicelib.webhooks) and live updates (chalicelib.live).
"""
