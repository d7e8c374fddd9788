"""The auditor's evidence pack (issue 19, part 5): ``cdp audit evidence --month YYYY-MM`` and the
``cdp_evidence`` DAG write one folder per month (``cdp.evidence.pack``); who could do what and the access
changes come from the catalog and its monthly snapshots (``cdp.evidence.privileges``)."""
