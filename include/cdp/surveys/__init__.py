"""Feedback loops (issue 18): who is asked to answer a survey, and what their answers say.

``sampling``: the weekly consented sample of course completers, recorded in ``ops.survey_invitation`` before
anything is sent. ``alerts``: the response rate and empty samples. The marts are SQL views
(``sql/definitions/mart/survey_*.sql``)."""
