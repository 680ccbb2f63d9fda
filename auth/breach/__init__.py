"""Breach corpora and the k-anonymity checks: hashing (HIBP's conventions), formats and
importer (files in), store (the local corpus), hibp and hibp_answers (the HIBP client),
checker (every configured source), scan, findings, finding_policy, monitor, subscribe and
hibp_push (HIBP's push model)."""
