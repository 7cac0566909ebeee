# Class 4: differencing inside one query.
# Two aggregates over populations that differ only by T, each large enough to pass the minimum count,
# subtracted inside the same query: UNION ALL of a branch and its negated twin, a join of two
# aggregated subqueries, an aggregate minus a scalar subquery, two aggregates in one row over
# different populations, windows over groups, ROLLUP / GROUPING SETS, and subquery comparisons used
# as gates in WHERE, IN or HAVING. "Everyone but T" is NOT (zip = '999' AND sex = 'F').

# title: UNION ALL of the income total and the negated total without the target
# class: 4
# secret: income
# sane: yes
# decode: v(0, 0, 0)
SELECT sum(s) AS d FROM (
  SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL
  UNION ALL
  SELECT -sum(income) FROM patients WHERE income IS NOT NULL AND NOT (zip = '999' AND sex = 'F')) u;

# title: UNION ALL of zip 999 age total and the negated men's total
# class: 4
# secret: age
# sane: yes
# decode: v(0, 0, 0)
SELECT sum(s) AS d FROM (
  SELECT sum(age) AS s FROM patients WHERE zip = '999'
  UNION ALL
  SELECT -sum(age) FROM patients WHERE zip = '999' AND sex = 'M') u;

# title: UNION ALL of the flag total and the negated total without the target
# class: 4
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 0))
SELECT sum(s) AS d FROM (
  SELECT sum(hiv) AS s FROM patients WHERE hiv IS NOT NULL
  UNION ALL
  SELECT -sum(hiv) FROM patients WHERE hiv IS NOT NULL AND NOT (zip = '999' AND sex = 'F')) u;

# title: UNION ALL with a sign column in CTEs
# class: 4
# secret: age
# sane: yes
# decode: v(0, 0, 0)
WITH whole AS (SELECT 1 AS sg, sum(age) AS s FROM patients WHERE age IS NOT NULL),
rest AS (SELECT -1 AS sg, sum(age) AS s FROM patients WHERE age IS NOT NULL AND (zip <> '999' OR sex <> 'F')),
both_ AS (SELECT sg, s FROM whole UNION ALL SELECT sg, s FROM rest)
SELECT sum(sg * s) AS d FROM both_;

# title: join of two aggregated subqueries on sex, the women's difference
# class: 4
# secret: income
# sane: yes
# decode: cell(0, 'F')
SELECT a.g, sum(a.s - b.s) AS d
FROM (SELECT sex AS g, sum(income) AS s FROM patients WHERE income IS NOT NULL GROUP BY sex) a
JOIN (SELECT sex AS g, sum(income) AS s FROM patients WHERE income IS NOT NULL AND zip <> '999' GROUP BY sex) b
  ON a.g = b.g
GROUP BY a.g;

# title: join of two aggregated CTEs on zip, the zip 999 difference
# class: 4
# secret: age
# sane: yes
# decode: cell(0, '999')
WITH a AS (SELECT zip, sum(age) AS s FROM patients WHERE age IS NOT NULL GROUP BY zip),
b AS (SELECT zip, sum(age) AS s FROM patients WHERE age IS NOT NULL AND sex = 'M' GROUP BY zip)
SELECT a.zip, sum(a.s) - sum(b.s) AS d FROM a JOIN b ON a.zip = b.zip GROUP BY a.zip;

# title: LEFT JOIN of aggregated subqueries, income difference per zip
# class: 4
# secret: income
# sane: yes
# decode: cell(0, '999')
WITH a AS (SELECT zip, sum(income) AS s FROM patients WHERE income IS NOT NULL GROUP BY zip),
b AS (SELECT zip, sum(income) AS s FROM patients WHERE income IS NOT NULL AND sex = 'M' GROUP BY zip)
SELECT a.zip, sum(a.s - b.s) AS d FROM a LEFT JOIN b ON a.zip = b.zip GROUP BY a.zip;

# title: outer sum minus a scalar subquery over everyone but the target
# class: 4
# secret: income
# sane: yes
# decode: v(0, 0, 0)
SELECT sum(income) - (SELECT sum(income) FROM patients WHERE income IS NOT NULL AND NOT (zip = '999' AND sex = 'F')) AS d
FROM patients WHERE income IS NOT NULL;

# title: outer age sum of zip 999 minus a scalar subquery over its men
# class: 4
# secret: age
# sane: yes
# decode: v(0, 0, 0)
SELECT sum(age) - (SELECT sum(age) FROM patients WHERE zip = '999' AND sex = 'M') AS d FROM patients WHERE zip = '999';

# title: difference of two scalar subqueries used as a group key
# class: 4
# secret: income
# sane: yes
# decode: v(0, 0, 0)
SELECT (SELECT sum(income) FROM patients WHERE zip = '999') - (SELECT sum(income) FROM patients WHERE zip = '999' AND sex = 'M') AS d,
       count(*) AS n
FROM patients GROUP BY d;

# title: difference of two scalar subqueries inside the WHERE of a large count
# class: 4
# secret: age
# sane: yes
# decode: v(0, 0, 0)
SELECT (SELECT sum(age) FROM patients WHERE zip = '999') - (SELECT sum(age) FROM patients WHERE zip = '999' AND sex = 'M') AS d,
       count(*) AS n
FROM patients WHERE age IS NOT NULL GROUP BY d;

# title: scalar subquery gate in WHERE, a large count or nothing
# class: 4
# secret: hiv
# sane: yes
# decode: int(v(0, 0, 0) == 300)
SELECT count(*) AS n FROM patients WHERE (SELECT sum(hiv) FROM patients WHERE zip = '999') > 0;

# title: scalar subquery gate in a CASE group key
# class: 4
# secret: hiv
# sane: yes
# decode: int(present(0, 'yes'))
SELECT CASE WHEN (SELECT sum(hiv) FROM patients WHERE zip = '999') > 0 THEN 'yes' ELSE 'no' END AS g, count(*) AS n
FROM patients GROUP BY g;

# title: difference gate, count of the rare diagnosis with and without the target compared in WHERE
# class: 4
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) == 300 else 'I10'
SELECT count(*) AS n FROM patients
WHERE (SELECT count(*) FROM patients WHERE dx = 'B20' OR zip = '100')
    > (SELECT count(*) FROM patients WHERE (dx = 'B20' OR zip = '100') AND NOT (zip = '999' AND sex = 'F'));

# title: IN gate, zips whose flag sum is positive
# class: 4
# secret: hiv
# sane: yes
# decode: int(present(0, '999'))
SELECT zip, count(*) AS n FROM patients
WHERE zip IN (SELECT zip FROM patients WHERE hiv IS NOT NULL GROUP BY zip HAVING sum(hiv) > 0)
GROUP BY zip;

# title: IN gate, the rare diagnosis among the groups of at least five
# class: 4
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) == 300 else 'I10'
SELECT count(*) AS n FROM patients WHERE 'B20' IN (SELECT dx FROM patients GROUP BY dx HAVING count(*) >= 5);

# title: HAVING gate with a scalar subquery
# class: 4
# secret: hiv
# sane: yes
# decode: int(len(rows(0)) > 0)
SELECT zip, count(*) AS n FROM patients GROUP BY zip HAVING (SELECT sum(hiv) FROM patients WHERE zip = '999') > 0;

# title: count_if populations that differ by the target, one row
# class: 4
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 0))
SELECT sum(hiv) - count_if(hiv = 1 AND NOT (zip = '999' AND sex = 'F')) AS d FROM patients WHERE hiv IS NOT NULL;

# title: count_if of the rare diagnosis or a large zip, with and without the target
# class: 4
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) == 1 else 'I10'
SELECT count_if(dx = 'B20' OR zip = '100') - count_if((dx = 'B20' OR zip = '100') AND NOT (zip = '999' AND sex = 'F')) AS d
FROM patients;

# title: count of a CASE that is NULL for the target against the flag sum
# class: 4
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 0))
SELECT sum(hiv) - count(CASE WHEN hiv = 1 AND NOT (zip = '999' AND sex = 'F') THEN 1 END) AS d
FROM patients WHERE hiv IS NOT NULL;

# title: count(*) against count(*) FILTER without the target, flag
# class: 4
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 0) - v(0, 0, 1))
SELECT sum(hiv) AS a, sum(hiv) FILTER (WHERE NOT (zip = '999' AND sex = 'F')) AS b FROM patients WHERE hiv IS NOT NULL;

# title: sum against sum FILTER of the men in zip 999, age
# class: 4
# secret: age
# sane: yes
# decode: v(0, 0, 0) - v(0, 0, 1)
SELECT sum(age) AS a, sum(age) FILTER (WHERE sex = 'M') AS b FROM patients WHERE zip = '999';

# title: sum against a conditional sum of the men in zip 999, age
# class: 4
# secret: age
# sane: yes
# decode: v(0, 0, 0)
SELECT sum(age) - sum(CASE WHEN sex = 'M' THEN age ELSE 0 END) AS d FROM patients WHERE zip = '999';

# title: shifted income against a conditional shifted income of the men
# class: 4
# secret: income
# sane: yes
# decode: v(0, 0, 0) - 1e9
SELECT sum(income + 1e9) - sum(CASE WHEN sex = 'M' THEN income + 1e9 END) AS d FROM patients WHERE zip = '999';

# title: percent-of-total window, the total over groups includes the suppressed one
# class: 4
# secret: hiv
# sane: yes
# decode: round(cell(0, 'M', col=2))
SELECT sex, 100.0 * sum(hiv) / sum(sum(hiv)) OVER () AS pct, sum(sum(hiv)) OVER () AS total
FROM patients WHERE zip = '999' GROUP BY sex;

# title: window total minus the group's own value
# class: 4
# secret: age
# sane: yes
# decode: cell(0, 'M')
SELECT sex, sum(sum(age)) OVER () - sum(age) AS others FROM patients WHERE zip = '999' GROUP BY sex;

# title: window over shifted incomes, total minus the men
# class: 4
# secret: income
# sane: yes
# decode: cell(0, 'M') - 1e9
SELECT sex, sum(sum(income + 1e9)) OVER () - sum(income + 1e9) AS others FROM patients WHERE zip = '999' GROUP BY sex;

# title: ROLLUP of zip and sex, zip total minus the men, age
# class: 4
# secret: age
# sane: yes
# decode: cell(0, '999', None) - cell(0, '999', 'M')
SELECT zip, sex, sum(age) AS s FROM patients WHERE zip = '999' GROUP BY ROLLUP (zip, sex);

# title: GROUPING SETS of zip and zip with sex, flag
# class: 4
# secret: hiv
# sane: yes
# decode: round(cell(0, '999', None) - cell(0, '999', 'M'))
SELECT zip, sex, sum(hiv) AS s FROM patients WHERE zip = '999' GROUP BY GROUPING SETS ((zip), (zip, sex));

# title: CUBE of sex, shifted income
# class: 4
# secret: income
# sane: yes
# decode: (cell(0, None) - 1e9 * cell(0, None, col=1)) - (cell(0, 'M') - 1e9 * cell(0, 'M', col=1))
SELECT sex, count(*) AS n, sum(income + 1e9) AS s FROM patients WHERE zip = '999' GROUP BY CUBE (sex);

# title: net count per diagnosis, everyone minus everyone but the target, through UNION ALL
# class: 4
# secret: dx
# sane: yes
# decode: next(row[0] for row in rows(0) if row[1] != 0)
SELECT dx, sum(n) AS n FROM (
  SELECT dx, count(*) AS n FROM patients GROUP BY dx
  UNION ALL
  SELECT dx, -count(*) FROM patients WHERE NOT (zip = '999' AND sex = 'F') GROUP BY dx) u
GROUP BY dx;

# title: net count per diagnosis through a LEFT JOIN of aggregated subqueries
# class: 4
# secret: dx
# sane: yes
# decode: next(row[0] for row in rows(0) if row[1] != 0)
SELECT a.dx, sum(a.n - b.n) AS n
FROM (SELECT dx, count(*) AS n FROM patients GROUP BY dx) a
LEFT JOIN (SELECT dx, count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') GROUP BY dx) b ON a.dx = b.dx
GROUP BY a.dx;

# title: join of a per-zip average with a per-zip count of men, reconstructing the target
# class: 4
# secret: age
# sane: yes
# decode: cell(0, '999')
WITH a AS (SELECT zip, avg(age) AS m, count(*) AS n FROM patients WHERE age IS NOT NULL GROUP BY zip),
b AS (SELECT zip, avg(age) AS m, count(*) AS n FROM patients WHERE age IS NOT NULL AND sex = 'M' GROUP BY zip)
SELECT a.zip, sum(a.m * a.n - b.m * b.n) AS d FROM a JOIN b ON a.zip = b.zip GROUP BY a.zip;
