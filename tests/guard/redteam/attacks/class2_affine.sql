# Class 2: affine shifts inside aggregates.
# zip '999' holds T and six men. A plain sum of income over zip '999' is dominated by T in world A
# (T's 987654 is 87% of it), so a dominance rule suppresses it. Adding a huge constant c to every
# value makes all contributions look alike (each about c), so the rule never fires; the attacker
# subtracts n * c afterwards. T's income is then the zip '999' total minus the men's total.
# Variants: the constant as a product of two capped constants, a cast literal, a date difference,
# another column times a constant, UNION ALL padding, a sum inside an aggregated subquery (never
# checked for dominance), and variances of shifted values.

# title: sum of income plus 1e9 over zip 999 and over its men
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 1e9 * v(0, 0, 0)) - (v(1, 0, 1) - 1e9 * v(1, 0, 0))
SELECT count(*) AS n, sum(income + 1e9) AS s FROM patients WHERE zip = '999';
-- next
SELECT count(*) AS n, sum(income + 1e9) AS s FROM patients WHERE zip = '999' AND sex = 'M';

# title: average of income minus 1e9 over zip 999 and over its men
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) + 1e9) * v(0, 0, 0) - (v(1, 0, 1) + 1e9) * v(1, 0, 0)
SELECT count(*) AS n, avg(income - 1e9) AS a FROM patients WHERE zip = '999';
-- next
SELECT count(*) AS n, avg(income - 1e9) AS a FROM patients WHERE zip = '999' AND sex = 'M';

# title: shift written as a product of two small constants
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 1e10 * v(0, 0, 0)) - (v(1, 0, 1) - 1e10 * v(1, 0, 0))
SELECT count(*) AS n, sum(income + 1e5 * 1e5) AS s FROM patients WHERE zip = '999';
-- next
SELECT count(*) AS n, sum(income + 1e5 * 1e5) AS s FROM patients WHERE zip = '999' AND sex = 'M';

# title: shift written as a product of three constants under any per-literal cap
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 8e9 * v(0, 0, 0)) - (v(1, 0, 1) - 8e9 * v(1, 0, 0))
SELECT count(*) AS n, sum(income + 2e3 * 2e3 * 2e3) AS s FROM patients WHERE zip = '999';
-- next
SELECT count(*) AS n, sum(income + 2e3 * 2e3 * 2e3) AS s FROM patients WHERE zip = '999' AND sex = 'M';

# title: shift written as a sum of capped constants
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 4e9 * v(0, 0, 0)) - (v(1, 0, 1) - 4e9 * v(1, 0, 0))
SELECT count(*) AS n, sum(income + 1e9 + 1e9 + 1e9 + 1e9) AS s FROM patients WHERE zip = '999';
-- next
SELECT count(*) AS n, sum(income + 1e9 + 1e9 + 1e9 + 1e9) AS s FROM patients WHERE zip = '999' AND sex = 'M';

# title: shift written as a cast of a string literal
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 1e11 * v(0, 0, 0)) - (v(1, 0, 1) - 1e11 * v(1, 0, 0))
SELECT count(*) AS n, sum(income + CAST('1e11' AS DOUBLE)) AS s FROM patients WHERE zip = '999';
-- next
SELECT count(*) AS n, sum(income + CAST('1e11' AS DOUBLE)) AS s FROM patients WHERE zip = '999' AND sex = 'M';

# title: shift written as a date difference between two constant dates
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 730119e6 * v(0, 0, 0)) - (v(1, 0, 1) - 730119e6 * v(1, 0, 0))
SELECT count(*) AS n, sum(income + date_diff('day', DATE '0001-01-01', DATE '2000-01-01') * 1e6) AS s
FROM patients WHERE zip = '999';
-- next
SELECT count(*) AS n, sum(income + date_diff('day', DATE '0001-01-01', DATE '2000-01-01') * 1e6) AS s
FROM patients WHERE zip = '999' AND sex = 'M';

# title: negated shift, constant minus income
# class: 2
# secret: income
# sane: yes
# decode: (1e9 * v(0, 0, 0) - v(0, 0, 1)) - (1e9 * v(1, 0, 0) - v(1, 0, 1))
SELECT count(*) AS n, sum(1e9 - income) AS s FROM patients WHERE zip = '999';
-- next
SELECT count(*) AS n, sum(1e9 - income) AS s FROM patients WHERE zip = '999' AND sex = 'M';

# title: shift by another column times a constant, that column summed alongside
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 0) - 1e7 * v(0, 0, 1)) - (v(1, 0, 0) - 1e7 * v(1, 0, 1))
SELECT sum(income + age * 1e7) AS s, sum(age) AS a FROM patients WHERE zip = '999';
-- next
SELECT sum(income + age * 1e7) AS s, sum(age) AS a FROM patients WHERE zip = '999' AND sex = 'M';

# title: shifted values prepared in a CTE, then summed
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 1e9 * v(0, 0, 0)) - (v(1, 0, 1) - 1e9 * v(1, 0, 0))
WITH t AS (SELECT zip, sex, income + 1e9 AS y FROM patients)
SELECT count(y) AS n, sum(y) AS s FROM t WHERE zip = '999';
-- next
WITH t AS (SELECT zip, sex, income + 1e9 AS y FROM patients)
SELECT count(y) AS n, sum(y) AS s FROM t WHERE zip = '999' AND sex = 'M';

# title: shifted average per zip, the zip 999 row minus the men's zip 999 row
# class: 2
# secret: income
# sane: yes
# decode: (cell(0, '999') - 1e9) * cell(0, '999', col=1) - (cell(1, '999') - 1e9) * cell(1, '999', col=1)
SELECT zip, count(*) AS n, avg(income + 1e9) AS a FROM patients WHERE income IS NOT NULL GROUP BY zip;
-- next
SELECT zip, count(*) AS n, avg(income + 1e9) AS a FROM patients WHERE income IS NOT NULL AND sex = 'M' GROUP BY zip;

# title: sum of income inside an aggregated subquery, never checked for dominance
# class: 2
# secret: income
# sane: yes
# decode: cell(0, '999') - cell(1, '999')
SELECT z, sum(s) AS s FROM (SELECT zip AS z, sum(income) AS s FROM patients WHERE zip = '999' GROUP BY zip) t GROUP BY z;
-- next
SELECT z, sum(s) AS s FROM (SELECT zip AS z, sum(income) AS s FROM patients WHERE zip = '999' AND sex = 'M' GROUP BY zip) t GROUP BY z;

# title: average of income inside an aggregated subquery with its count
# class: 2
# secret: income
# sane: yes
# decode: v(0, 0, 0) * v(0, 0, 1) - v(1, 0, 0) * v(1, 0, 1)
SELECT sum(a) AS a, sum(n) AS n FROM (SELECT zip, avg(income) AS a, count(*) AS n FROM patients WHERE zip = '999' GROUP BY zip) t;
-- next
SELECT sum(a) AS a, sum(n) AS n FROM (SELECT zip, avg(income) AS a, count(*) AS n FROM patients WHERE zip = '999' AND sex = 'M' GROUP BY zip) t;

# title: sum of income in a scalar subquery used as a group key
# class: 2
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT (SELECT sum(income) FROM patients WHERE zip = '999') AS s, count(*) AS n FROM patients GROUP BY s;
-- next
SELECT (SELECT sum(income) FROM patients WHERE zip = '999' AND sex = 'M') AS s, count(*) AS n FROM patients GROUP BY s;

# title: sum of income in a scalar subquery inside a sum of a constant
# class: 2
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(1) * 0 + (SELECT sum(income) FROM patients WHERE zip = '999') AS s FROM patients;
-- next
SELECT sum(1) * 0 + (SELECT sum(income) FROM patients WHERE zip = '999' AND sex = 'M') AS s FROM patients;

# title: UNION ALL padding with constant rows from a large group
# class: 2
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(x) AS s FROM (SELECT income AS x FROM patients WHERE zip = '999'
                         UNION ALL SELECT 1e9 FROM patients WHERE zip = '100') u;
-- next
SELECT sum(x) AS s FROM (SELECT income AS x FROM patients WHERE zip = '999' AND sex = 'M'
                         UNION ALL SELECT 1e9 FROM patients WHERE zip = '100') u;

# title: UNION ALL padding with shifted incomes of a large group
# class: 2
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(x) AS s FROM (SELECT income AS x FROM patients WHERE zip = '999'
                         UNION ALL SELECT income + 1e8 FROM patients WHERE zip = '200' AND income IS NOT NULL) u;
-- next
SELECT sum(x) AS s FROM (SELECT income AS x FROM patients WHERE zip = '999' AND sex = 'M'
                         UNION ALL SELECT income + 1e8 FROM patients WHERE zip = '200' AND income IS NOT NULL) u;

# title: shifted variance and shifted sum give sums of squares; T is the root of their difference
# class: 2
# secret: income
# sane: yes
# decode: math.sqrt(v(0, 0, 0) * (v(0, 0, 1) + (v(0, 0, 2) / v(0, 0, 0) - 1e9) ** 2) - v(1, 0, 0) * (v(1, 0, 1) + (v(1, 0, 2) / v(1, 0, 0) - 1e9) ** 2))
SELECT count(*) AS n, var_pop(income + 1e9) AS v, sum(income + 1e9) AS s FROM patients WHERE zip = '999';
-- next
SELECT count(*) AS n, var_pop(income + 1e9) AS v, sum(income + 1e9) AS s FROM patients WHERE zip = '999' AND sex = 'M';

# title: shifted sample variance of zip 999 with and without the target
# class: 2
# secret: income
# sane: yes
# decode: math.sqrt((v(0, 0, 0) - 1) * v(0, 0, 1) + (v(0, 0, 2) - 7e9) ** 2 / v(0, 0, 0) - (v(1, 0, 0) - 1) * v(1, 0, 1) - (v(1, 0, 2) - 6e9) ** 2 / v(1, 0, 0))
SELECT count(*) AS n, var_samp(income - 1e9) AS v, sum(income + 1e9) AS s FROM patients WHERE zip = '999';
-- next
SELECT count(*) AS n, var_samp(income - 1e9) AS v, sum(income + 1e9) AS s FROM patients WHERE zip = '999' AND sex = 'M';

# title: shift by a per-sex constant from a joined aggregated subquery
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 0) - v(0, 0, 1)) - (v(1, 0, 0) - v(1, 0, 1))
SELECT sum(p.income + k.c) AS s, sum(k.c) AS c
FROM patients p JOIN (SELECT sex, count(*) * 1e7 AS c FROM patients GROUP BY sex) k ON p.sex = k.sex
WHERE p.zip = '999';
-- next
SELECT sum(p.income + k.c) AS s, sum(k.c) AS c
FROM patients p JOIN (SELECT sex, count(*) * 1e7 AS c FROM patients GROUP BY sex) k ON p.sex = k.sex
WHERE p.zip = '999' AND p.sex = 'M';

# title: scaled and shifted average over zip 999 and its men
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 1e6) * 1000 * v(0, 0, 0) - (v(1, 0, 1) - 1e6) * 1000 * v(1, 0, 0)
SELECT count(*) AS n, avg(income / 1000 + 1e6) AS a FROM patients WHERE zip = '999';
-- next
SELECT count(*) AS n, avg(income / 1000 + 1e6) AS a FROM patients WHERE zip = '999' AND sex = 'M';

# title: shifted sums with and without the target in one query through UNION ALL
# class: 2
# secret: income
# sane: yes
# decode: v(0, 0, 0)
SELECT sum(s) AS t FROM (
  SELECT sum(income + 1e9) - count(*) * 1e9 AS s FROM patients WHERE zip = '999'
  UNION ALL
  SELECT count(*) * 1e9 - sum(income + 1e9) FROM patients WHERE zip = '999' AND sex = 'M') u;

# title: shifted sum grouped by zip with the target's zip alone
# class: 2
# secret: income
# sane: yes
# decode: (cell(0, '999') - 1e9 * cell(0, '999', col=1)) - (cell(1, '999') - 1e9 * cell(1, '999', col=1))
SELECT zip, count(*) AS n, sum(income + 1e9) AS s FROM patients WHERE zip IN ('999', '100') AND income IS NOT NULL GROUP BY zip;
-- next
SELECT zip, count(*) AS n, sum(income + 1e9) AS s FROM patients WHERE zip IN ('999', '100') AND sex <> 'F' AND income IS NOT NULL GROUP BY zip;

# title: shift that differs per person by age keeps contributions alike, recovered with sum of age
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 0) - 1e7 * v(0, 0, 1) - 1e9 * v(0, 0, 2)) - (v(1, 0, 0) - 1e7 * v(1, 0, 1) - 1e9 * v(1, 0, 2))
SELECT sum(income + age * 1e7 + 1e9) AS s, sum(age) AS a, count(*) AS n FROM patients WHERE zip = '999';
-- next
SELECT sum(income + age * 1e7 + 1e9) AS s, sum(age) AS a, count(*) AS n FROM patients WHERE zip = '999' AND sex = 'M';

# title: shifted sum over visits joined to patients, one row per person through a person-level CTE
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 1e9 * v(0, 0, 0)) - (v(1, 0, 1) - 1e9 * v(1, 0, 0))
WITH pp AS (SELECT pid, count(*) AS nv FROM visits GROUP BY pid)
SELECT count(*) AS n, sum(p.income + 1e9) AS s FROM patients p JOIN pp ON pp.pid = p.pid WHERE p.zip = '999';
-- next
WITH pp AS (SELECT pid, count(*) AS nv FROM visits GROUP BY pid)
SELECT count(*) AS n, sum(p.income + 1e9) AS s FROM patients p JOIN pp ON pp.pid = p.pid WHERE p.zip = '999' AND p.sex = 'M';

# title: shifted average of the target plus a large known group, minus that group
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 1e9) * v(0, 0, 0) - (v(1, 0, 1) - 1e9) * v(1, 0, 0)
SELECT count(*) AS n, avg(income + 1e9) AS a FROM patients
WHERE income IS NOT NULL AND (zip = '300' OR (zip = '999' AND sex = 'F'));
-- next
SELECT count(*) AS n, avg(income + 1e9) AS a FROM patients WHERE income IS NOT NULL AND zip = '300';

# title: shift applied only in the aggregate, the filter hides the target behind a range on zip
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 1e9 * v(0, 0, 0)) - (v(1, 0, 1) - 1e9 * v(1, 0, 0))
SELECT count(*) AS n, sum(1e9 + income) AS s FROM patients WHERE zip > '900';
-- next
SELECT count(*) AS n, sum(1e9 + income) AS s FROM patients WHERE zip > '900' AND sex > 'F';

# title: shift defeats dominance on the per-person sum of a person-level CTE
# class: 2
# secret: income
# sane: yes
# decode: (v(0, 0, 1) - 1e9 * v(0, 0, 0)) - (v(1, 0, 1) - 1e9 * v(1, 0, 0))
WITH pp AS (SELECT pid, sum(income) AS m FROM patients GROUP BY pid)
SELECT count(*) AS n, sum(pp.m + 1e9) AS s FROM pp JOIN patients p ON p.pid = pp.pid WHERE p.zip = '999';
-- next
WITH pp AS (SELECT pid, sum(income) AS m FROM patients GROUP BY pid)
SELECT count(*) AS n, sum(pp.m + 1e9) AS s FROM pp JOIN patients p ON p.pid = pp.pid WHERE p.zip = '999' AND p.sex = 'M';

# title: UNION ALL padding branch first, so a dominance pass keyed on the first branch's person sees one NULL person
# class: 2
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(x) AS s FROM (SELECT 1e9 AS x FROM patients WHERE zip = '100'
                         UNION ALL SELECT income FROM patients WHERE zip = '999') u;
-- next
SELECT sum(x) AS s FROM (SELECT 1e9 AS x FROM patients WHERE zip = '100'
                         UNION ALL SELECT income FROM patients WHERE zip = '999' AND sex = 'M') u;

# title: UNION ALL padding with shifted incomes first, target's group second
# class: 2
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(x) AS s FROM (SELECT income + 1e8 AS x FROM patients WHERE zip = '200' AND income IS NOT NULL
                         UNION ALL SELECT income FROM patients WHERE zip = '999') u;
-- next
SELECT sum(x) AS s FROM (SELECT income + 1e8 AS x FROM patients WHERE zip = '200' AND income IS NOT NULL
                         UNION ALL SELECT income FROM patients WHERE zip = '999' AND sex = 'M') u;
