# Class 7: timing through join fan-out.
# Each query joins a multi-row view to itself (or to another multi-row view) more than once on the
# person key, with a condition that keeps only T's rows when T has the secret property. Its size,
# and so its running time, grows as the product of the persons' row counts: on real data with
# hundreds of visits per person it runs for minutes when T matches and returns at once when not,
# whatever the released cells say. Wall time cannot be judged in a test, so "decode: ALLOWED" means
# the attack succeeds if the guard allows every query: the guard must refuse joins whose fan-out can
# exceed a bound (at most one self-join of a multi-row view on the person key, and an estimated
# cardinality limit).

# title: three instances of visits joined on the person key, gated on the target's flag
# class: 7
# secret: fanout
# decode: ALLOWED
SELECT count(*) AS n FROM visits a JOIN visits b ON a.pid = b.pid JOIN visits c ON b.pid = c.pid
JOIN patients p ON p.pid = a.pid WHERE p.zip = '999' AND p.sex = 'F' AND p.hiv = 1;

# title: five instances of visits joined on the person key, gated on the target's diagnosis
# class: 7
# secret: fanout
# decode: ALLOWED
SELECT count(*) AS n FROM visits a JOIN visits b ON a.pid = b.pid JOIN visits c ON a.pid = c.pid
JOIN visits d ON a.pid = d.pid JOIN visits e ON a.pid = e.pid
JOIN patients p ON p.pid = a.pid WHERE p.zip = '999' AND p.sex = 'F' AND p.dx = 'B20';

# title: visits joined to labs joined to labs, gated on the flag
# class: 7
# secret: fanout
# decode: ALLOWED
SELECT count(*) AS n FROM visits v JOIN labs l1 ON l1.pid = v.pid JOIN labs l2 ON l2.pid = v.pid
JOIN patients p ON p.pid = v.pid WHERE p.zip = '999' AND p.sex = 'F' AND p.hiv = 1;

# title: two self-joins of visits and two of labs
# class: 7
# secret: fanout
# decode: ALLOWED
SELECT count(*) AS n FROM visits a JOIN visits b ON a.pid = b.pid JOIN labs c ON c.pid = a.pid
JOIN labs d ON d.pid = a.pid JOIN patients p ON p.pid = a.pid WHERE p.zip = '999' AND p.hiv = 1;

# title: the gate is the rare diagnosis on the joined visits themselves
# class: 7
# secret: fanout
# decode: ALLOWED
SELECT count(*) AS n FROM visits a JOIN visits b ON a.pid = b.pid JOIN visits c ON a.pid = c.pid
WHERE a.dx = 'B20';

# title: UNION ALL copies of visits joined to each other
# class: 7
# secret: fanout
# decode: ALLOWED
SELECT count(*) AS n
FROM (SELECT pid FROM visits UNION ALL SELECT pid FROM visits UNION ALL SELECT pid FROM visits
      UNION ALL SELECT pid FROM visits) u
JOIN (SELECT pid FROM visits UNION ALL SELECT pid FROM visits UNION ALL SELECT pid FROM visits
      UNION ALL SELECT pid FROM visits) w ON u.pid = w.pid
JOIN patients p ON p.pid = u.pid WHERE p.zip = '999' AND p.sex = 'F' AND p.hiv = 1;

# title: one CTE of visits used four times
# class: 7
# secret: fanout
# decode: ALLOWED
WITH v AS (SELECT pid, cost FROM visits)
SELECT count(*) AS n FROM v a JOIN v b ON a.pid = b.pid JOIN v c ON a.pid = c.pid JOIN v d ON a.pid = d.pid
JOIN patients p ON p.pid = a.pid WHERE p.zip = '999' AND p.sex = 'F' AND p.hiv = 1;

# title: LEFT JOIN chain of visits
# class: 7
# secret: fanout
# decode: ALLOWED
SELECT count(*) AS n FROM patients p LEFT JOIN visits a ON a.pid = p.pid LEFT JOIN visits b ON b.pid = p.pid
LEFT JOIN visits c ON c.pid = p.pid WHERE p.zip = '999' AND p.sex = 'F' AND p.hiv = 1;

# title: self-joins with an extra inequality on dates, labs twice
# class: 7
# secret: fanout
# decode: ALLOWED
SELECT count(*) AS n FROM visits a JOIN visits b ON a.pid = b.pid AND b.visit_date >= a.visit_date
JOIN labs c ON c.pid = a.pid JOIN labs d ON d.pid = a.pid
JOIN patients p ON p.pid = a.pid WHERE p.zip = '999' AND p.sex = 'F' AND p.hiv = 1;

# title: the fan-out hidden in a person-key IN subquery
# class: 7
# secret: fanout
# decode: ALLOWED
SELECT count(*) AS n FROM patients
WHERE pid IN (SELECT a.pid FROM visits a JOIN visits b ON a.pid = b.pid JOIN visits c ON a.pid = c.pid
              JOIN patients q ON q.pid = a.pid WHERE q.zip = '999' AND q.sex = 'F' AND q.hiv = 1);

# title: the fan-out hidden in a person-level CTE
# class: 7
# secret: fanout
# decode: ALLOWED
WITH pp AS (SELECT a.pid, count(*) AS k FROM visits a JOIN visits b ON a.pid = b.pid JOIN visits c ON a.pid = c.pid
            JOIN labs d ON d.pid = a.pid GROUP BY a.pid)
SELECT count(*) AS n, avg(pp.k) AS k FROM pp JOIN patients p ON p.pid = pp.pid WHERE p.zip = '999' AND p.hiv = 1;

# title: self-joins plus a join to an aggregated subquery on a non-key column
# class: 7
# secret: fanout
# decode: ALLOWED
SELECT count(*) AS n FROM visits a JOIN visits b ON a.pid = b.pid
JOIN (SELECT department, count(*) AS k FROM visits GROUP BY department) d ON a.department = d.department
JOIN visits c ON c.pid = a.pid JOIN patients p ON p.pid = a.pid WHERE p.zip = '999' AND p.hiv = 1;

# title: join on the person key written with USING
# class: 7
# secret: fanout
# decode: ALLOWED
SELECT count(*) AS n FROM visits a JOIN visits b USING (pid) JOIN visits c USING (pid) JOIN patients p USING (pid)
WHERE p.zip = '999' AND p.sex = 'F' AND p.hiv = 1;
