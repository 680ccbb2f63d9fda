"""The second door: the activity guard (is this session a robot?) and the sign-in risk
rules (spraying, stuffing, new networks), their counters, and the alerts they raise.

Rules are pure (`policy`, `risk`); counters sit behind one interface, in Redis when
configured, in the database otherwise; `alerts` records, groups and pushes what the
security team must see.
"""
