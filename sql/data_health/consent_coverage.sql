-- Consent coverage per purpose over the people who count (not merged away): how many have an explicit
-- statement at all, and how many may be contacted (mart.outreach_decision's refusal_reason IS NULL).
SELECT purpose,
       count(*) AS people,
       count(*) FILTER (WHERE latest_status IS NOT NULL) AS with_statement,
       count(*) FILTER (WHERE refusal_reason IS NULL) AS eligible
FROM mart.outreach_decision
GROUP BY purpose
ORDER BY purpose;
