"""Anomalies -> incidents -> graded cases with a code and QR -> the governance centre's intake.

Modules, one concept each (records in ``models``; errors drawn in ``errors``):

- ``aggregation``: incidents from anomalies (quiet close, hold-down re-open, min observations/duration);
- ``grading_tables`` / ``grading``: the checked tables and the grade, category, deadline, routing;
- ``codes`` / ``qr`` / ``text`` / ``evidence``: case code, QR code, bilingual text, annotated snapshot;
- ``store``: incidents, cases, history, sequences, evidence index (SQLite WAL, one thread);
- ``outbox`` / ``forwarder`` / ``breaker`` / ``signing`` / ``mapping``: at-least-once signed delivery;
- ``status``: callbacks, polling, overdue marks, the public view;
- ``service``: ``CaseService``, what the gateway runs; ``settings``: ``EventsSettings``;
- ``intake``: the reference intake service (``python -m xueliang.events.intake``).
"""
